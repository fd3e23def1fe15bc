"""Checks declared on S3 file streams and PostgreSQL CDC streams run in the stream's own step,
like a SQL stream's: they pass on good data, fail on bad data naming the offending keys, and an
error-severity failure fails the step after the rows are committed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
    run_sql,
    s3_resource,
)

CHECKS = """
    checks:
      - not_null: [customer]
      - {accepted_values: status, values: [open, refunded]}
      - {range: amount, min: 0}
      - schema_drift: true
"""
DECLARED = {"not_null", "accepted_values_status", "range_amount", "schema_unchanged"}

FILES_CATALOG = """
sources:
  drops:
    type: s3
    s3: {{region: us-east-1, endpoint_url_env: DW_S3_ENDPOINT_URL, path_style: true}}
streams:
  - source: drops
    name: returns
    primary_key: {primary_key}
    files: {{bucket: {bucket}, prefix: in/, glob: "*.csv", mode: {mode}, schema_policy: evolve}}
"""

CDC_CATALOG = """
sources:
  src:
    type: postgres
    url_env: SRC_URL
    cdc: {{slot: {slot}, publication: {slot}}}
streams:
  - source: src
    object: returns
    mode: cdc
    deletes: soft
"""


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def run_all(defs: dg.Definitions, key: dg.AssetKey, resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize([defs.get_assets_def(key)], resources=resources, raise_on_error=False)


def described(found: dict[str, dg.AssetCheckEvaluation]) -> dict[str, str]:
    return {name: e.description or "" for name, e in found.items()}


# -- S3 file streams -----------------------------------------------------------------------------

FILES_KEY = dg.AssetKey(["drops", "returns"])
GOOD_CSV = b"id,customer,status,amount\n1,c1,open,1.50\n2,c2,refunded,2.00\n3,c3,open,3.00\n"
# a new column, and one offence per check (an empty field is NULL)
BAD_CSV = b"id,customer,status,amount,note\n4,,open,1.00,x\n5,c5,lost,1.00,\n6,c6,open,-5.00,\n"


def files_defs(bucket: str, primary_key: str = "[id]", mode: str = "merge") -> dg.Definitions:
    yaml = FILES_CATALOG.format(bucket=bucket, primary_key=primary_key, mode=mode) + CHECKS
    return StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]


def files_resources(local_s3, warehouse_url: str) -> dict:  # type: ignore[no-untyped-def]
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        "source_drops": s3_resource(local_s3),
    }


@pytest.fixture(scope="module")
def file_runs(
    local_s3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]]:  # type: ignore[no-untyped-def]
    """A load of a good file, then of a bad one, into one DuckDB warehouse."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client = local_s3.client()
    client.create_bucket(Bucket=bucket)
    defs = files_defs(bucket)
    resources = files_resources(local_s3, str(tmp_path_factory.mktemp("files") / "w.duckdb"))
    client.put_object(Bucket=bucket, Key="in/1.csv", Body=GOOD_CSV)
    good = run_all(defs, FILES_KEY, resources)
    client.put_object(Bucket=bucket, Key="in/2.csv", Body=BAD_CSV)
    bad = run_all(defs, FILES_KEY, resources)
    yield good, bad
    for key in ("in/1.csv", "in/2.csv"):
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)


def test_a_file_streams_declared_checks_pass_after_a_load_of_good_data(file_runs) -> None:  # type: ignore[no-untyped-def]
    good, _ = file_runs
    found = evaluations(good)
    assert DECLARED <= set(found)
    assert all(found[n].passed for n in DECLARED), described(found)
    assert good.success


@pytest.mark.parametrize(
    ("check", "named"),
    [
        ("not_null", "id=4: NULL customer"),
        ("accepted_values_status", "id=5: status=lost"),
        ("range_amount", "id=6: amount=-5"),
        ("schema_unchanged", "appeared: note"),
    ],
)
def test_a_file_streams_check_fails_on_a_bad_file_naming_the_offending_key(
    file_runs, check: str, named: str
) -> None:  # type: ignore[no-untyped-def]
    evaluation = evaluations(file_runs[1])[check]
    assert not evaluation.passed
    assert named in (evaluation.description or "")


def test_a_failing_error_check_fails_the_file_load_after_its_rows_are_committed(
    file_runs,
) -> None:  # type: ignore[no-untyped-def]
    _, bad = file_runs
    assert not bad.success  # blocking: nothing downstream builds in this run
    [event] = bad.asset_materializations_for_node("drops__returns")
    assert event.metadata["dagster/row_count"].value == 6
    assert evaluations(bad)["schema_unchanged"].severity == dg.AssetCheckSeverity.WARN


def test_a_file_stream_without_a_key_names_the_object_a_bad_row_came_from(
    local_s3, bucket, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key="in/2.csv", Body=BAD_CSV)
    defs = files_defs(bucket, primary_key="[]", mode="append")
    result = run_all(defs, FILES_KEY, files_resources(local_s3, duckdb_warehouse_url))

    evaluation = evaluations(result)["accepted_values_status"]
    assert not evaluation.passed
    assert "_dw_source_file=in/2.csv: status=lost" in (evaluation.description or "")


# -- PostgreSQL CDC streams ----------------------------------------------------------------------

CDC_KEY = dg.AssetKey(["src", "returns"])


@pytest.fixture(scope="module")
def cdc_runs(
    logical_wal: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dg.ExecuteInProcessResult]]:
    """Three CDC runs of one source into one DuckDB warehouse: the snapshot of good rows; bad
    changes (and a new column); then the delete of a bad row, soft-deleted in the warehouse.

    The slot and publication are this module's own: other CDC tests use the default `dw_src`."""
    database = new_postgres_database("dwt_checks_cdc")
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"
    slot = f"dw_checks_{uuid.uuid4().hex[:8]}"
    yaml = CDC_CATALOG.format(slot=slot) + CHECKS
    defs = StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    warehouse = Path(tmp_path_factory.mktemp("cdc")) / "w.duckdb"
    resources = {
        "warehouse": WarehouseResource(url=str(warehouse)),
        "source_src": SqlSourceResource(url=url, name="src"),
    }
    try:
        run_sql(
            url,
            "CREATE TABLE returns"
            " (id int PRIMARY KEY, customer text, status text, amount numeric(10, 2))",
            "INSERT INTO returns SELECT g, 'c' || g, 'open', g FROM generate_series(1, 6) g",
        )
        runs = {"good": run_all(defs, CDC_KEY, resources)}
        run_sql(
            url,
            "ALTER TABLE returns ADD COLUMN note text",
            "UPDATE returns SET customer = NULL WHERE id = 2",
            "UPDATE returns SET status = 'lost' WHERE id IN (3, 6)",
            "UPDATE returns SET amount = -5 WHERE id = 4",
        )
        runs["bad"] = run_all(defs, CDC_KEY, resources)
        run_sql(url, "DELETE FROM returns WHERE id = 6")
        runs["deleted"] = run_all(defs, CDC_KEY, resources)
        yield runs
    finally:
        drop_postgres_database(database)  # drops the slot with it


def test_a_cdc_streams_declared_checks_pass_after_a_snapshot_of_good_data(cdc_runs) -> None:  # type: ignore[no-untyped-def]
    good = cdc_runs["good"]
    found = evaluations(good)
    assert DECLARED <= set(found)
    assert all(found[n].passed for n in DECLARED), described(found)
    assert good.success


@pytest.mark.parametrize(
    ("check", "named"),
    [
        ("not_null", "id=2: NULL customer"),
        ("accepted_values_status", "id=3: status=lost; id=6: status=lost"),
        ("range_amount", "id=4: amount=-5"),
        ("schema_unchanged", "appeared: note"),
    ],
)
def test_a_cdc_streams_check_fails_on_bad_changes_naming_the_offending_key(
    cdc_runs, check: str, named: str
) -> None:  # type: ignore[no-untyped-def]
    evaluation = evaluations(cdc_runs["bad"])[check]
    assert not evaluation.passed
    assert named in (evaluation.description or "")


def test_a_failing_error_check_fails_the_cdc_step_after_the_changes_are_applied(
    cdc_runs,
) -> None:  # type: ignore[no-untyped-def]
    bad = cdc_runs["bad"]
    assert not bad.success
    [event] = [m for m in bad.asset_materializations_for_node("src_cdc") if m.asset_key == CDC_KEY]
    assert event.metadata["rows_updated"].value == 4


def test_a_soft_deleted_cdc_row_is_no_violation(cdc_runs) -> None:  # type: ignore[no-untyped-def]
    evaluation = evaluations(cdc_runs["deleted"])["accepted_values_status"]
    assert not evaluation.passed
    assert evaluation.metadata["failing_rows"].value == 1
    assert evaluation.metadata["failing_examples"].value == ["id=3: status=lost"]
    # the drift was reported by the run that met it, not again
    assert evaluations(cdc_runs["deleted"])["schema_unchanged"].passed
