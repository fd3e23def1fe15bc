"""The code location loads, and what it declares is what a data engineer sees in the UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.definitions import defs as load_defs

DEMO_STREAMS = {"customers", "products", "orders", "order_items", "order_events"}
SALESFORCE_STREAMS = {"account", "contact", "opportunity", "lead"}
DBT_LAYERS = {"staging", "marts"}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return load_defs()


def _spec(defs: dg.Definitions, name: str) -> dg.AssetSpec:
    return next(iter(defs.get_assets_def(dg.AssetKey(["demo_shop", name])).specs))


def test_every_declared_stream_is_an_asset_keyed_by_source_and_table(defs: dg.Definitions) -> None:
    # dbt models (staging, marts) are assets too; this test is about the streams.
    keys = {tuple(k.path) for k in defs.resolve_all_asset_keys() if k.path[0] not in DBT_LAYERS}
    assert keys == {("demo_shop", name) for name in DEMO_STREAMS} | {
        ("salesforce", name) for name in SALESFORCE_STREAMS
    } | {("partner_drops", "returns"), ("aws", "cost_and_usage"), ("stripe", "charges")}


def test_stream_assets_carry_group_kinds_owners_description_and_table_name(
    defs: dg.Definitions,
) -> None:
    spec = _spec(defs, "orders")
    assert spec.group_name == "demo_shop"
    assert spec.kinds == {"sqlite", "duckdb"}
    assert spec.owners == ["team:data-platform"]
    assert spec.description and "order" in spec.description.lower()
    assert spec.metadata["dagster/table_name"] == "warehouse.demo_shop.orders"
    assert spec.metadata["primary_key"] == "id"
    assert spec.metadata["cursor"] == "updated_at"


def test_incremental_job_selects_exactly_the_incremental_streams(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("incremental_sync_job")
    selected = {tuple(k.path) for k in job.asset_layer.selected_asset_keys}
    assert selected == {("demo_shop", n) for n in ("customers", "orders", "order_items")} | {
        ("salesforce", n) for n in SALESFORCE_STREAMS
    } | {("stripe", "charges")}


def test_the_partitioned_stream_runs_in_its_own_job_not_in_the_location_wide_ones(
    defs: dg.Definitions,
) -> None:
    events = dg.AssetKey(["demo_shop", "order_events"])
    own = defs.resolve_job_def("demo_shop_order_events_job")

    assert own.asset_layer.selected_asset_keys == {events}
    assert own.partitions_def == dg.DailyPartitionsDefinition(
        start_date="2026-01-01", timezone="UTC"
    )
    for name in ("all_streams_job", "incremental_sync_job"):
        job = defs.resolve_job_def(name)
        assert events not in job.asset_layer.selected_asset_keys
        assert job.partitions_def is None


def test_full_refresh_job_selects_exactly_the_full_refresh_streams(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("full_refresh_sync_job")
    assert {k.path[-1] for k in job.asset_layer.selected_asset_keys} == {"products"}


def test_schedules_exist_and_start_stopped_until_switched_on(defs: dg.Definitions) -> None:
    schedules = {s.name: defs.resolve_schedule_def(s.name) for s in defs.schedules or []}
    assert set(schedules) == {
        "incremental_sync_schedule",
        "full_refresh_sync_schedule",
        "demo_shop_orders_schedule",
        "salesforce_reconcile_schedule",
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())
    assert schedules["demo_shop_orders_schedule"].cron_schedule == "*/15 * * * *"
    assert schedules["incremental_sync_schedule"].cron_schedule == "0 * * * *"


def test_source_urls_come_from_the_environment_variable_the_yaml_names(
    defs: dg.Definitions,
) -> None:
    resource = defs.resources["source_demo_shop"]
    assert resource.url_env == "DW_DEMO_SHOP_URL"


def test_streams_keeping_one_row_per_key_have_a_primary_key_check(defs: dg.Definitions) -> None:
    checked = {
        key.asset_key.path[-1]
        for key in defs.resolve_asset_graph().asset_check_keys
        if key.name == "primary_key_is_unique"
    }
    assert checked == {"customers", "products", "orders", "charges"} | SALESFORCE_STREAMS


def test_salesforce_streams_are_keyed_by_object_in_the_salesforce_pool(
    defs: dg.Definitions,
) -> None:
    assets = defs.get_assets_def(dg.AssetKey(["salesforce", "account"]))
    spec = next(iter(assets.specs))
    assert spec.kinds == {"salesforce", "duckdb"}
    assert spec.group_name == "salesforce"
    assert spec.metadata["source_object"] == "Account"
    assert spec.metadata["primary_key"] == "Id"
    assert {node.pool for node in [assets.node_def]} == {"salesforce"}


def test_salesforce_credentials_come_from_the_variables_the_yaml_names(
    defs: dg.Definitions,
) -> None:
    resource = defs.resources["source_salesforce"]
    assert resource.password_env == "DW_SALESFORCE_PASSWORD"
    assert resource.security_token_env == "DW_SALESFORCE_SECURITY_TOKEN"
    assert resource.domain_env == "DW_SALESFORCE_DOMAIN"


def test_the_stripe_stream_reads_the_api_and_its_key_from_the_variables_the_yaml_names(
    defs: dg.Definitions,
) -> None:
    spec = next(iter(defs.get_assets_def(dg.AssetKey(["stripe", "charges"])).specs))
    api = defs.resources["source_stripe"].model()
    assert spec.kinds == {"rest", "duckdb"}
    assert (api.base_url_env, api.auth.token_env) == ("DW_STRIPE_BASE_URL", "DW_STRIPE_API_KEY")


def test_the_salesforce_reconcile_job_syncs_then_reconciles_every_merge_stream(
    defs: dg.Definitions,
) -> None:
    job = defs.resolve_job_def("salesforce_reconcile_job")
    selected = {tuple(k.path) for k in job.asset_layer.selected_asset_keys}
    assert selected == {("salesforce", n) for n in SALESFORCE_STREAMS}
    schedule = defs.resolve_schedule_def("salesforce_reconcile_schedule")
    assert schedule.cron_schedule == "0 4 * * 0"


def test_a_duckdb_warehouse_runs_every_sync_of_a_run_in_the_run_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DW_WAREHOUSE_URL", str(tmp_path / "warehouse.duckdb"))
    assert load_defs().executor == dg.in_process_executor


def test_a_postgres_warehouse_runs_each_sync_in_its_own_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DW_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:5432/warehouse")
    assert load_defs().executor == dg.multiprocess_executor


def test_loading_twice_in_one_environment_builds_the_definitions_once() -> None:
    assert load_defs() is load_defs()


def test_loading_the_definitions_imports_no_engine_library() -> None:
    """The webserver, the daemon and every run's process load the definitions: the libraries a
    sync needs are imported where it runs."""
    code = (
        "import sys, dw_pipelines.definitions as d; d.defs();"
        "heavy = {'duckdb', 'sqlalchemy', 'boto3', 'simple_salesforce', 'psycopg2',"
        " 'adbc_driver_postgresql', 'pyarrow.parquet', 'pyarrow.compute'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_first_load_putting_dbt_on_path_does_not_cause_a_second_build() -> None:
    """The dbt component puts the venv's `dbt` on PATH while it builds; a process (a run, a
    `dagster asset materialize`) that loads the definitions again must reuse the first build."""
    code = (
        "import os, dw_pipelines.definitions as d;"
        "os.environ['PATH'] = '/usr/bin:/bin'; first = d.defs();"
        "os.environ['PATH'] = '/nowhere:' + os.environ['PATH']; second = d.defs();"
        "print(first is second, d._build.cache_info().misses)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "1"]


def test_the_alert_sensors_are_in_the_location_and_run_by_default(
    defs: dg.Definitions,
) -> None:
    sensors = {s.name: s for s in defs.sensors or []}  # type: ignore[union-attr]
    for name in ("run_failure_alert_sensor", "asset_check_alert_sensor"):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING
        assert isinstance(sensors[name], dg.RunStatusSensorDefinition)
