"""S3 file streams in Dagster: declared in YAML; an asset, a quarantine check and a sensor each."""

from __future__ import annotations

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import DeclarationError
from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import s3_resource, warehouse_rows

KEY = dg.AssetKey(["drops", "events"])

CATALOG = """
sources:
  drops:
    type: s3
    s3: {{region: us-east-1, endpoint_url_env: DW_S3_ENDPOINT_URL, path_style: true}}
streams:
  - source: drops
    name: events
    files: {{bucket: {bucket}, prefix: in/, glob: "*.csv", max_files_per_run: {max_files}{extra}}}
"""


def catalog_defs(bucket: str, max_files: int = 500, extra: str = "") -> dg.Definitions:
    yaml = CATALOG.format(bucket=bucket, max_files=max_files, extra=extra)
    return StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]


def put(local_s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def resources(local_s3, warehouse_url: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        "source_drops": s3_resource(local_s3),
    }


def materialize(defs: dg.Definitions, local_s3, warehouse_url: str, partition: str | None = None):  # type: ignore[no-untyped-def]
    checks = [c for c in defs.asset_checks or [] if isinstance(c, dg.AssetChecksDefinition)]
    return dg.materialize(
        [defs.get_assets_def(KEY), *checks],
        resources=resources(local_s3, warehouse_url),
        partition_key=partition,
    )


def sensor(defs: dg.Definitions) -> dg.SensorDefinition:
    return next(s for s in defs.sensors or [] if s.name == "drops_events_sensor")  # type: ignore[union-attr]


def tick(defs: dg.Definitions, local_s3, cursor: str | None) -> tuple[list[dg.RunRequest], str]:  # type: ignore[no-untyped-def]
    # Partitioned run requests are resolved against the whole repository, resources included.
    available = resources(local_s3, ":memory:")
    complete = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        resources=available,
    )
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources=available,
            definitions=complete,
        )
        result = sensor(defs).evaluate_tick(context)
    return list(result.run_requests or []), result.cursor or ""


def test_a_file_stream_is_an_asset_with_a_quarantine_check_and_a_stopped_sensor(bucket) -> None:
    defs = catalog_defs(bucket)
    asset = defs.get_assets_def(KEY)

    assert "s3" in asset.specs_by_key[KEY].kinds
    assert sensor(defs).default_status == dg.DefaultSensorStatus.STOPPED
    check_keys = {k for c in defs.asset_checks or [] for k in c.check_keys}  # type: ignore[union-attr]
    assert dg.AssetCheckKey(KEY, "no_quarantined_files") in check_keys


def test_materializing_reports_files_rows_and_schema(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(4, 2)))
    result = materialize(catalog_defs(bucket), local_s3, duckdb_warehouse_url)

    [event] = result.asset_materializations_for_node("drops__events")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert (meta["files_loaded"], meta["rows_inserted"], meta["dagster/row_count"]) == (2, 5, 5)
    assert meta["files_quarantined"] == 0
    columns = [c.name for c in meta["dagster/column_schema"].columns]
    assert columns == ["id", "customer", "amount", "placed_at", "_dw_synced_at",
                       "_dw_source_file", "_dw_source_modified"]  # fmt: skip


def test_the_check_warns_while_a_file_is_quarantined(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    put(local_s3, bucket, "in/2.csv", b"id,customer,amount,placed_at\n1,2\n")
    result = materialize(catalog_defs(bucket), local_s3, duckdb_warehouse_url)

    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["quarantined_files"].value == 1
    assert result.success  # the other file loaded; the run is green, the check says what's wrong


def test_the_sensor_pages_past_1000_keys_and_requests_bounded_runs(local_s3, bucket) -> None:
    client = local_s3.client()
    for n in range(1050):
        client.put_object(Bucket=bucket, Key=f"in/{n:05}.csv", Body=b"id\n1\n")
    runs, _ = tick(catalog_defs(bucket, max_files=400), local_s3, None)

    assert [r.tags["dw/files"] for r in runs] == ["400", "400", "250"]
    assert len({r.run_key for r in runs}) == 3


def test_the_sensor_requests_only_new_or_rewritten_objects(local_s3, bucket) -> None:
    defs = catalog_defs(bucket)
    put(local_s3, bucket, "in/1.csv", b"id\n1\n")
    put(local_s3, bucket, "in/2.csv", b"id\n2\n")
    first, cursor = tick(defs, local_s3, None)
    unchanged, cursor = tick(defs, local_s3, cursor)
    put(local_s3, bucket, "in/2.csv", b"id\n22\n")
    put(local_s3, bucket, "in/3.csv", b"id\n3\n")
    put(local_s3, bucket, "in/ignored.txt", b"x")
    changed, cursor = tick(defs, local_s3, cursor)

    assert [r.tags["dw/files"] for r in first] == ["2"]
    assert unchanged == []
    assert [r.tags["dw/files"] for r in changed] == ["2"]
    assert changed[0].run_key != first[0].run_key


def test_partitioned_streams_get_a_run_per_day_and_load_only_that_day(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    extra = ", partitioning: key_date, start_date: '2026-11-01'"
    defs = catalog_defs(bucket, extra=extra)
    put(local_s3, bucket, "in/2026-11-01/a.csv", data.csv_bytes(data.rows(1, 2)))
    put(local_s3, bucket, "in/2026-11-02/b.csv", data.csv_bytes(data.rows(3, 2)))
    runs, _ = tick(defs, local_s3, None)
    materialize(defs, local_s3, duckdb_warehouse_url, partition="2026-11-02")

    assert sorted(r.partition_key for r in runs) == ["2026-11-01", "2026-11-02"]  # type: ignore[type-var]
    assert warehouse_rows(duckdb_warehouse_url, "SELECT id FROM drops.events ORDER BY id") == [
        (3,),
        (4,),
    ]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("{source: drops, name: x}", r"field 'files': an s3 source's stream declares `files:`"),
        ("{source: drops, name: x, files: {bucket: b}, cursor: ts}", r"field 'cursor': does not apply"),
        ("{source: drops, name: x, files: {bucket: b, mode: merge}}", r"field 'files.primary_key'"),
        ("{source: drops, name: x, files: {bucket: b, column_types: {a: money}}}", r"unknown type 'money'"),
        ("{source: drops, name: x, files: {bucket: b, lookback: soon}}", r"not a duration"),
    ],
)  # fmt: skip
def test_a_bad_file_stream_declaration_names_the_field(stream: str, message: str) -> None:
    yaml = f"sources: {{drops: {{type: s3}}}}\nstreams: [{stream}]"
    with pytest.raises(DeclarationError, match=message):
        StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]


CODE_LOCATION = '''
import os
import dagster as dg
from dw_pipelines.components import StreamCatalog
from dw_pipelines.resources.warehouse import WarehouseResource

YAML = """
sources:
  drops:
    type: s3
    s3: {region: us-east-1, endpoint_url_env: DW_S3_ENDPOINT_URL, access_key_id_env: DW_S3_ACCESS_KEY_ID,
         secret_access_key_env: DW_S3_SECRET_ACCESS_KEY, path_style: true}
streams:
  - source: drops
    name: events
    files: {bucket: BUCKET, prefix: in/, partitioning: key_date, start_date: "2026-11-01"}
"""
defs = dg.Definitions.merge(
    StreamCatalog.resolve_from_yaml(YAML).build_defs(None),
    dg.Definitions(resources={"warehouse": WarehouseResource(url=os.environ["DW_WAREHOUSE_URL"])}),
)
'''


def test_a_date_range_is_backfilled_from_the_cli_in_one_run(local_s3, bucket, tmp_path) -> None:
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    for day in ("01", "02", "03"):
        put(local_s3, bucket, f"in/2026-11-{day}/f.csv", data.csv_bytes(data.rows(int(day), 1)))
    location = tmp_path / "location.py"
    location.write_text(CODE_LOCATION.replace("BUCKET", bucket))
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", home / "dagster.yaml")
    warehouse = str(tmp_path / "wh.duckdb")
    env = {**os.environ, **local_s3.env(), "DAGSTER_HOME": str(home), "DW_WAREHOUSE_URL": warehouse}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", str(location),
         "--select", "drops/events", "--partition-range", "2026-11-01...2026-11-02"],
        # Not in the project root, whose `.env` (from `make demo`) Dagster's CLI would load.
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert warehouse_rows(warehouse, "SELECT id FROM drops.events ORDER BY id") == [(1,), (2,)]


def test_a_file_landing_today_is_requested_for_todays_partition(local_s3, bucket) -> None:
    from datetime import UTC

    defs = catalog_defs(bucket, extra=", partitioning: modified_date, start_date: '2026-01-01'")
    put(local_s3, bucket, "in/today.csv", b"id\n1\n")
    runs, _ = tick(defs, local_s3, None)

    # The day the store stamped the object, not the test's clock: right across midnight UTC too.
    stamped = local_s3.client().head_object(Bucket=bucket, Key="in/today.csv")["LastModified"]
    assert [r.partition_key for r in runs] == [stamped.astimezone(UTC).date().isoformat()]


def test_keys_without_a_date_are_never_requested_and_never_hold_the_cursor(
    local_s3, bucket
) -> None:
    import json

    defs = catalog_defs(bucket, extra=", partitioning: key_date, start_date: '2026-11-01'")
    put(local_s3, bucket, "in/no-date-here.csv", b"id\n1\n")
    put(local_s3, bucket, "in/2025-01-01/before-start.csv", b"id\n1\n")
    put(local_s3, bucket, "in/2026-11-02/a.csv", b"id\n1\n")
    runs, cursor = tick(defs, local_s3, None)
    dated = local_s3.client().head_object(Bucket=bucket, Key="in/2026-11-02/a.csv")

    assert [r.partition_key for r in runs] == ["2026-11-02"]
    assert json.loads(cursor)["high_water"] == dated["LastModified"].isoformat()
    assert list(json.loads(cursor)["recent"]) == ["in/2026-11-02/a.csv"]
