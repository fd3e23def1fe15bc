"""The dbt transforms on a BigQuery warehouse (the local emulator) give the staging views and
marts they give on DuckDB, for the same raw tables synced into each by the engine.

Both builds run the way the product runs them: the dbt assets loaded for DW_WAREHOUSE_URL and
materialized through dagster-dbt (`dbt build`). The emulator is not BigQuery (README, "BigQuery
as the warehouse"); every model runs on it as written, with nothing left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from dw_pipelines.definitions import defs as load_defs
from dw_pipelines.devservices.bigquery_emulator import BigQueryEmulator
from dw_pipelines.ingest.assets import WAREHOUSE_OP_TAG
from dw_pipelines.sync.warehouses.bigquery import BigQueryWarehouse
from dw_pipelines_tests.bigquery_fixtures import REQUEST_TIMEOUT_S
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
)
from dw_pipelines_tests.test_transforms import MARTS, warehouse_url
from dw_pipelines_tests.transforms_data import (
    RAW_TABLES,
    sync_raw_tables,
    write_raw_tables_postgres,
)

STAGING = [f"stg_{source}__{table}" for source, table in RAW_TABLES]
# Sums of FLOAT64 / DOUBLE (and NUMERIC against DECIMAL) compared to this many decimal places.
PLACES = 6

Table = tuple[list[str], list[tuple[Any, ...]]]


def build(url: str) -> dg.ExecuteInProcessResult:
    """Every model and dbt test, as the code location loaded for `url` runs them."""
    with warehouse_url(url), dg.instance_for_test() as instance:
        dbt_assets = load_defs().get_assets_def(dg.AssetKey(["marts", "customer_360"]))
        assert dbt_assets.op.tags[WAREHOUSE_OP_TAG] in ("duckdb", "bigquery")
        return dg.materialize([dbt_assets], instance=instance, raise_on_error=False)


@pytest.fixture(scope="module")
def builds(
    bigquery_emulator: BigQueryEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, dg.ExecuteInProcessResult], Path, str]]:
    """The fixture's raw tables synced from PostgreSQL into a DuckDB file and into BigQuery
    datasets of their own, and one `dbt build` on each."""
    source = new_postgres_database("dwt_bqdbt")
    source_url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{source}"
    duckdb_path = tmp_path_factory.mktemp("bq_transforms") / "warehouse.duckdb"
    bigquery_url = (
        f"bigquery://{bigquery_emulator.project}/t{uuid.uuid4().hex[:10]}"
        f"?endpoint={bigquery_emulator.endpoint}&timeout={REQUEST_TIMEOUT_S}"
    )
    try:
        write_raw_tables_postgres(source_url)
        sync_raw_tables(source_url, str(duckdb_path))
        sync_raw_tables(source_url, bigquery_url)
        results = {"duckdb": build(str(duckdb_path)), "bigquery": build(bigquery_url)}
        yield results, duckdb_path, bigquery_url
    finally:
        drop_postgres_database(source)


def canonical(value: Any) -> Any:
    """A value as both warehouses can agree on it: numbers rounded to PLACES (NUMERIC and
    DECIMAL, INT64 and BIGINT, FLOAT64 and DOUBLE alike), instants in UTC."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), PLACES)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


def sorted_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    canon = [tuple(canonical(v) for v in row) for row in rows]
    return columns, sorted(canon, key=lambda row: [(v is None, str(v)) for v in row])


def duckdb_table(path: Path, layer: str, name: str) -> Table:
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f'SELECT * FROM "{layer}"."{name}"')
        columns = [d[0] for d in cursor.description]
        return sorted_rows(columns, cursor.fetchall())


def bigquery_table(url: str, layer: str, name: str) -> Table:
    warehouse = BigQueryWarehouse(url)
    try:
        result = warehouse.client.query(f"SELECT * FROM {warehouse.table(layer, name)}").result(
            timeout=REQUEST_TIMEOUT_S
        )
        return sorted_rows([f.name for f in result.schema], [tuple(r.values()) for r in result])
    finally:
        warehouse.close()


def test_the_build_on_bigquery_materializes_every_model_and_passes_every_dbt_test(
    builds,  # type: ignore[no-untyped-def]
) -> None:
    result = builds[0]["bigquery"]
    assert result.success
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert keys == {f"staging/{m}" for m in STAGING} | {f"marts/{m}" for m in MARTS}
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)


@pytest.mark.parametrize("model", STAGING)
def test_each_staging_view_on_bigquery_equals_duckdbs_row_for_row(builds, model: str) -> None:  # type: ignore[no-untyped-def]
    results, duckdb_path, bigquery_url = builds
    assert results["duckdb"].success
    expected = duckdb_table(duckdb_path, "staging", model)
    assert expected[1], "the fixture gives every staging view rows"
    assert bigquery_table(bigquery_url, "staging", model) == expected


@pytest.mark.parametrize("model", MARTS)
def test_each_mart_on_bigquery_equals_duckdbs_row_for_row(builds, model: str) -> None:  # type: ignore[no-untyped-def]
    results, duckdb_path, bigquery_url = builds
    assert results["duckdb"].success
    expected = duckdb_table(duckdb_path, "marts", model)
    assert expected[1], "the fixture gives every mart rows"
    assert bigquery_table(bigquery_url, "marts", model) == expected


def test_marts_on_bigquery_report_row_counts_and_column_lineage(builds) -> None:  # type: ignore[no-untyped-def]
    """Read through the manifest parsed for BigQuery, though this process loaded DuckDB's first."""
    events = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in builds[0]["bigquery"].get_asset_materialization_events()
    }
    assert events["marts/customer_360"]["dagster/row_count"].value == 3
    assert events["marts/revenue_pipeline"]["dagster/row_count"].value == 4
    lineage = events["marts/customer_360"]["dagster/column_lineage"].value.deps_by_column
    assert {d.asset_key for d in lineage["lifetime_order_value"]} == {
        dg.AssetKey(["staging", "stg_demo_shop__orders"])
    }
