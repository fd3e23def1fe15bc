"""CDC streams in Dagster: declared in YAML, materialized together, watched by a check and a sensor."""

from __future__ import annotations

import json
import textwrap
import time

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import DeclarationError
from dw_pipelines_tests.conftest import query, run_sql

pytestmark = pytest.mark.usefixtures("logical_wal")

CATALOG = """
sources:
  src:
    type: postgres
    url_env: SRC_URL
    cdc: {cdc}
streams:
  - {{source: src, object: items, mode: cdc}}
  - {{source: src, object: notes, mode: cdc, deletes: soft}}
"""


def catalog_defs(cdc: str = "{}") -> dg.Definitions:
    return StreamCatalog.resolve_from_yaml(CATALOG.format(cdc=cdc)).build_defs(None)  # type: ignore[arg-type]


def make_tables(url: str) -> None:
    run_sql(
        url,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "CREATE TABLE notes (id int PRIMARY KEY, body text)",
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g",
    )


def resources(source_url: str, warehouse_url: str) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        "source_src": SqlSourceResource(url=source_url, name="src"),
    }


def materialize(defs: dg.Definitions, source_url: str, warehouse_url: str, **config: object):
    asset = defs.get_assets_def(dg.AssetKey(["src", "items"]))
    checks = [c for c in defs.asset_checks or [] if isinstance(c, dg.AssetChecksDefinition)]
    return dg.materialize(
        [asset, *checks],
        resources=resources(source_url, warehouse_url),
        run_config={"ops": {"src_cdc": {"config": config}}} if config else None,
    )


def metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict[str, object]:
    [event] = [
        m for m in result.asset_materializations_for_node("src_cdc") if m.asset_key.path == key
    ]
    return {k: v.value for k, v in event.metadata.items()}


def test_cdc_streams_of_a_source_are_one_multi_asset_with_a_job_sensor_and_checks() -> None:
    defs = catalog_defs()
    items = defs.get_assets_def(dg.AssetKey(["src", "items"]))
    assert items is defs.get_assets_def(dg.AssetKey(["src", "notes"]))
    assert items.node_def.name == "src_cdc"
    assert "src_cdc_job" in [job.name for job in defs.jobs or []]
    assert sensor_def(defs).default_status == dg.DefaultSensorStatus.STOPPED
    check_keys = {k for c in defs.asset_checks or [] for k in c.check_keys}  # type: ignore[union-attr]
    assert dg.AssetCheckKey(dg.AssetKey(["src", "items"]), "replication_slot_lag") in check_keys


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("{source: lite, object: t, mode: cdc}", r"field 'mode'.*cdc needs a postgres source"),
        ("{source: src, object: t, mode: cdc, cursor: ts}", r"field 'cursor'.*does not apply"),
        ("{source: src, object: t, mode: cdc, schedule: '* * * * *'}", r"src_cdc_sensor"),
        ("{source: src, object: t, mode: full_refresh, deletes: soft}", r"field 'deletes'.*cdc"),
    ],
)
def test_invalid_cdc_declarations_name_the_entry_and_field(stream: str, message: str) -> None:
    yaml = textwrap.dedent(
        f"""
        sources:
          src: {{type: postgres, url_env: SRC_URL}}
          lite: {{type: sqlite, url_env: LITE_URL}}
        streams:
          - {stream}
        """
    )
    with pytest.raises(DeclarationError, match=r"streams\[0\].*" + message):
        StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]


def test_materializing_records_counts_lsn_and_schema_per_stream(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_tables(pg_source_url)
    defs = catalog_defs()
    first = materialize(defs, pg_source_url, duckdb_warehouse_url)
    run_sql(
        pg_source_url, "UPDATE items SET name = 'x' WHERE id = 1", "DELETE FROM items WHERE id = 2"
    )
    second = materialize(defs, pg_source_url, duckdb_warehouse_url)

    items = metadata(second, ["src", "items"])
    assert metadata(first, ["src", "items"])["snapshot_taken"] is True
    assert items["snapshot_taken"] is False
    assert (items["rows_updated"], items["rows_deleted"], items["dagster/row_count"]) == (1, 1, 4)
    assert items["lsn_after"] > items["lsn_before"]  # type: ignore[operator]
    assert items["replication_slot"] == "dw_src"
    columns = [c.name for c in items["dagster/column_schema"].columns]  # type: ignore[attr-defined]
    assert columns == ["id", "name", "_dw_synced_at", "_dw_lsn"]
    notes = metadata(second, ["src", "notes"])["dagster/column_schema"]
    assert "_dw_deleted_at" in [c.name for c in notes.columns]  # type: ignore[attr-defined]


def test_each_cdc_stream_writes_its_sync_line_to_the_runs_log(
    pg_source_url, duckdb_warehouse_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DW_LOG_FORMAT", "json")
    make_tables(pg_source_url)
    defs = catalog_defs()
    materialize(defs, pg_source_url, duckdb_warehouse_url)
    run_sql(pg_source_url, "DELETE FROM items WHERE id = 2")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def(dg.AssetKey(["src", "items"]))],
            resources=resources(pg_source_url, duckdb_warehouse_url),
            instance=instance,
        )
        messages = [e.user_message for e in instance.all_logs(result.run_id) if not e.dagster_event]

    lines = {
        line["stream"]: line
        for line in (json.loads(m) for m in messages if m.startswith("{"))
        if line["event"] == "stream_sync"
    }
    assert set(lines) == {"src.items", "src.notes"}
    items = lines["src.items"]
    assert (items["mode"], items["rows_deleted"], items["row_count"]) == ("cdc", 1, 4)
    assert items["cursor_after"] == metadata(result, ["src", "items"])["lsn_after"]
    assert items["slot_retained_wal_bytes"] >= items["slot_lag_bytes"]  # type: ignore[operator]


def test_resnapshot_config_copies_every_table_again(pg_source_url, duckdb_warehouse_url) -> None:
    make_tables(pg_source_url)
    defs = catalog_defs()
    materialize(defs, pg_source_url, duckdb_warehouse_url)
    again = materialize(defs, pg_source_url, duckdb_warehouse_url, resnapshot=True)

    assert metadata(again, ["src", "items"])["snapshot_taken"] is True


def check_result(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [
        e.event_specific_data
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path == ["src", "items"]  # type: ignore[union-attr]
    ] or [None]
    return evaluation  # type: ignore[return-value]


def test_slot_lag_check_passes_when_caught_up(pg_source_url, duckdb_warehouse_url) -> None:
    make_tables(pg_source_url)
    result = materialize(catalog_defs(), pg_source_url, duckdb_warehouse_url)

    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["src", "items"]
    )
    assert evaluation.passed
    assert evaluation.metadata["lag_bytes"].value < 1 << 20
    # The WAL kept for the slot (from restart_lsn) is never less than the lag.
    assert evaluation.metadata["retained_wal_bytes"].value >= evaluation.metadata["lag_bytes"].value


@pytest.mark.parametrize(
    ("cdc", "severity"),
    [
        ("{lag_warn_bytes: 1, lag_fail_bytes: 1000000000}", dg.AssetCheckSeverity.WARN),
        ("{lag_warn_bytes: 1, lag_fail_bytes: 2}", dg.AssetCheckSeverity.ERROR),
        ("{lag_warn_age: '1s', lag_fail_age: '1 hour'}", dg.AssetCheckSeverity.WARN),
    ],
)
def test_slot_lag_check_warns_then_fails_above_its_thresholds(
    pg_source_url, duckdb_warehouse_url, cdc: str, severity: dg.AssetCheckSeverity
) -> None:
    make_tables(pg_source_url)
    defs = catalog_defs(cdc)
    materialize(defs, pg_source_url, duckdb_warehouse_url)
    run_sql(pg_source_url, "INSERT INTO items VALUES (100, 'pending')")  # not applied yet
    time.sleep(1.2)  # the pending change is older than the 1 s age threshold
    checks_only = dg.materialize(
        [defs.get_assets_def(dg.AssetKey(["src", "items"])), *(defs.asset_checks or [])],  # type: ignore[list-item]
        resources=resources(pg_source_url, duckdb_warehouse_url),
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["src", "items"])),
        raise_on_error=False,
    )
    result = next(
        e for e in checks_only.get_asset_check_evaluations() if e.asset_key.path == ["src", "items"]
    )
    assert not result.passed
    assert result.severity == severity


def sensor_def(defs: dg.Definitions) -> dg.SensorDefinition:
    return next(s for s in defs.sensors or [] if s.name == "src_cdc_sensor")


def evaluate_sensor(
    defs: dg.Definitions, source_url: str, instance: dg.DagsterInstance, cursor: str | None = None
):
    sensor = sensor_def(defs)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"source_src": SqlSourceResource(url=source_url, name="src")},
    )
    return sensor.evaluate_tick(context)


def test_sensor_requests_a_run_only_when_changes_are_pending(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_tables(pg_source_url)
    defs = catalog_defs()
    with dg.instance_for_test() as instance:
        before_slot = evaluate_sensor(defs, pg_source_url, instance)
        assert len(before_slot.run_requests or []) == 1  # no slot yet: the first run creates it

        materialize(defs, pg_source_url, duckdb_warehouse_url)
        idle = evaluate_sensor(defs, pg_source_url, instance)
        assert not idle.run_requests
        assert "no change pending" in (idle.skip_message or "")
        confirmed = query(
            pg_source_url,
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()",
        )[0][0]
        assert idle.cursor == confirmed

        run_sql(pg_source_url, "INSERT INTO notes VALUES (1, 'new')")
        pending = evaluate_sensor(defs, pg_source_url, instance, idle.cursor)
        assert len(pending.run_requests or []) == 1


def test_sensor_asks_for_a_run_to_advance_past_unrelated_wal(
    pg_source_url, duckdb_warehouse_url
) -> None:
    make_tables(pg_source_url)
    defs = catalog_defs("{advance_after_bytes: 100000}")
    materialize(defs, pg_source_url, duckdb_warehouse_url)
    run_sql(
        pg_source_url,
        "CREATE TABLE busy AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
    )
    with dg.instance_for_test() as instance:
        tick = evaluate_sensor(defs, pg_source_url, instance)

    assert len(tick.run_requests or []) == 1
    assert tick.run_requests[0].tags["dw/cdc_reason"] == "advance slot past unrelated WAL"  # type: ignore[index]
