"""Every stream sync writes one structured line to its run's log: counts, cursors, timing.

Read back from the run's event log, where the UI shows it; JSON when DW_LOG_FORMAT=json.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.demo import shop
from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import run_sql, s3_resource
from dw_pipelines_tests.test_files_dagster import KEY as FILES_KEY
from dw_pipelines_tests.test_files_dagster import catalog_defs as files_catalog_defs
from dw_pipelines_tests.test_files_dagster import put

ORDERS = StreamSpec(
    source="demo_shop",
    object="orders",
    mode="incremental_merge",  # type: ignore[arg-type]
    primary_key=("id",),
    cursor="updated_at",
)


def run_log(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The run's log messages as the UI lists them."""
    return [e.user_message for e in instance.all_logs(result.run_id) if e.dagster_event is None]


def json_sync_lines(messages: list[str]) -> list[dict[str, object]]:
    lines = [json.loads(m) for m in messages if m.startswith("{")]
    return [line for line in lines if line.get("event") == "stream_sync"]


@pytest.fixture
def shop_resources(tmp_path: Path) -> dict[str, dg.ConfigurableResource]:
    shop.build(tmp_path / "shop.sqlite")
    return {
        source_resource_key("demo_shop"): SqlSourceResource(
            url=f"sqlite:///{tmp_path / 'shop.sqlite'}", name="demo_shop"
        ),
        "warehouse": WarehouseResource(url=str(tmp_path / "warehouse.duckdb")),
    }


def sync_orders(resources: dict) -> tuple[list[str], dg.ExecuteInProcessResult]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_stream_asset(ORDERS, source_kind="sqlite")],
            resources=resources,
            instance=instance,
        )
        return run_log(instance, result), result


def test_a_sql_sync_writes_one_json_line_with_counts_cursors_and_timing(
    shop_resources: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DW_LOG_FORMAT", "json")
    sync_orders(shop_resources)  # the second run has a cursor before
    messages, result = sync_orders(shop_resources)

    [line] = json_sync_lines(messages)
    [materialization] = result.asset_materializations_for_node("demo_shop__orders")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert line["stream"] == "demo_shop.orders"
    assert line["mode"] == "incremental_merge"
    for key in ("rows_read", "rows_inserted", "rows_updated", "rows_unchanged", "rows_deleted",
                "cursor_before", "cursor_after", "duration_s"):  # fmt: skip
        assert line[key] == metadata[key], key
    assert line["row_count"] == metadata["dagster/row_count"]
    assert line["cursor_before"] and line["cursor_after"]
    assert isinstance(line["duration_s"], float)


def test_without_the_variable_the_line_is_key_value_text(
    shop_resources: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DW_LOG_FORMAT", raising=False)
    messages, result = sync_orders(shop_resources)

    [line] = [m for m in messages if m.startswith("stream demo_shop.orders synced:")]
    rows = result.asset_materializations_for_node("demo_shop__orders")[0].metadata["rows_read"]
    assert f" rows_read={rows.value} " in line
    assert ' cursor_before="" ' in line  # a first sync starts from nothing
    assert " duration_s=" in line
    assert json_sync_lines(messages) == []


def test_the_line_holds_no_password_of_the_source(
    pg_source_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DW_LOG_FORMAT", "json")
    run_sql(pg_source_url, "CREATE TABLE items (id int PRIMARY KEY, updated_at timestamptz)",
            "INSERT INTO items SELECT g, now() FROM generate_series(1, 3) g")  # fmt: skip
    # Trust authentication accepts any password: this one is only there to be leaked or not.
    url = pg_source_url.replace("postgres@", "postgres:Hunter2-secret@")
    spec = StreamSpec(source="src", object="items", mode="incremental_merge",  # type: ignore[arg-type]
                      primary_key=("id",), cursor="updated_at")  # fmt: skip
    resources = {
        "source_src": SqlSourceResource(url=url, name="src"),
        "warehouse": WarehouseResource(url=str(tmp_path / "warehouse.duckdb")),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_stream_asset(spec, source_kind="postgres")],
            resources=resources,
            instance=instance,
        )
        messages = run_log(instance, result)

    assert json_sync_lines(messages)[0]["rows_read"] == 3
    assert not [m for m in messages if "Hunter2-secret" in m]


def test_a_file_stream_writes_the_same_line_with_its_file_counts(
    local_s3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DW_LOG_FORMAT", "json")
    put(local_s3, bucket, "in/a.csv", data.csv_bytes(data.rows(0, 5)))
    put(local_s3, bucket, "in/b.csv", data.csv_bytes(data.rows(5, 3)))
    defs = files_catalog_defs(bucket)
    resources = {
        "warehouse": WarehouseResource(url=str(tmp_path / "warehouse.duckdb")),
        "source_drops": s3_resource(local_s3),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def(FILES_KEY)], resources=resources, instance=instance
        )
        [line] = json_sync_lines(run_log(instance, result))

    assert (line["stream"], line["mode"]) == ("drops.events", "files")
    assert (line["files_loaded"], line["rows_inserted"], line["row_count"]) == (2, 8, 8)
    assert line["cursor_after"] == "in/b.csv"
