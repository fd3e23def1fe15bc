"""Checks declared in a stream's YAML run in the sync's step: they pass on good data, and on bad
data they fail naming the offending keys, on a DuckDB and a PostgreSQL warehouse."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.demo import shop
from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.checks import CHECK_TYPES, declared_checks
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
    run_sql,
)

ORDERS = StreamSpec(
    source="demo_shop",
    object="orders",
    mode="incremental_merge",  # type: ignore[arg-type]
    primary_key=("id",),
    cursor="updated_at",
)
KEY = dg.AssetKey(["demo_shop", "orders"])
CHECKS = [
    {"not_null": ["customer_id", "status"]},
    {
        "accepted_values": "status",
        "values": ["pending", "paid", "shipped", "delivered", "cancelled"],
    },
    {"range": "total_amount", "min": 0},
    {"reconcile": True},
    {"schema_drift": True},
]


def asset(spec: StreamSpec = ORDERS, checks: list[dict] = CHECKS) -> dg.AssetsDefinition:
    declared = declared_checks(spec.stream_id, checks, CHECK_TYPES)
    return build_stream_asset(spec, source_kind="sqlite", checks=declared)


def shop_resources(shop_path: Path, warehouse_url: str) -> dict[str, dg.ConfigurableResource]:
    return {
        source_resource_key("demo_shop"): SqlSourceResource(
            url=f"sqlite:///{shop_path}", name="demo_shop"
        ),
        "warehouse": WarehouseResource(url=warehouse_url),
    }


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def checks_only(resources: dict, spec: StreamSpec = ORDERS) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset(spec)],
        resources=resources,
        selection=dg.AssetSelection.checks_for_assets(KEY),
        raise_on_error=False,
    )


def warehouse_execute(url: str, *statements: str) -> None:
    warehouse = open_warehouse(url)
    try:
        with warehouse.transaction():
            for sql in statements:
                warehouse.execute(sql)
    finally:
        warehouse.close()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def any_warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A warehouse URL per kind, shared by the module's tests of that kind."""
    if request.param == "duckdb":
        yield str(tmp_path_factory.mktemp("checks") / "warehouse.duckdb")
        return
    name = new_postgres_database("dwt_checks")
    yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    drop_postgres_database(name)


@pytest.fixture(scope="module")
def good_run(
    any_warehouse: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, dg.ExecuteInProcessResult]:
    shop_path = tmp_path_factory.mktemp("shop") / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, any_warehouse)
    return resources, dg.materialize([asset()], resources=resources)


@pytest.fixture(scope="module")
def bad_run(good_run: tuple[dict, dg.ExecuteInProcessResult]) -> dict[str, dg.AssetCheckEvaluation]:
    """The checks alone, after bad rows reached the warehouse (as a faulty load would leave)."""
    resources = good_run[0]
    url = resources["warehouse"].url
    warehouse_execute(
        url,
        "UPDATE demo_shop.orders SET customer_id = NULL WHERE id = 7",
        "UPDATE demo_shop.orders SET status = 'lost' WHERE id = 8",
        "UPDATE demo_shop.orders SET total_amount = -5 WHERE id = 9",
        "DELETE FROM demo_shop.orders WHERE id = 11",
    )
    return evaluations(checks_only(resources))


def test_every_declared_check_passes_after_a_sync_of_good_data(good_run) -> None:  # type: ignore[no-untyped-def]
    found = evaluations(good_run[1])
    assert set(found) == {
        "primary_key_is_unique", "not_null", "accepted_values_status", "range_total_amount",
        "matches_source", "schema_unchanged",
    }  # fmt: skip
    assert all(e.passed for e in found.values()), {n: e.description for n, e in found.items()}
    reconciled = found["matches_source"].metadata
    assert reconciled["source_rows"].value == reconciled["warehouse_rows"].value > 100


@pytest.mark.parametrize(
    ("check", "named"),
    [
        ("not_null", "id=7: NULL customer_id"),
        ("accepted_values_status", "id=8: status=lost"),
        ("range_total_amount", "id=9: total_amount=-5.00"),
        ("matches_source", "key 11: at the source, missing from the warehouse"),
    ],
)
def test_a_check_fails_on_bad_data_naming_the_offending_key(bad_run, check, named) -> None:  # type: ignore[no-untyped-def]
    evaluation = bad_run[check]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert named in (evaluation.description or "")


def test_a_failing_value_check_counts_the_rows_and_lists_examples(bad_run) -> None:  # type: ignore[no-untyped-def]
    metadata = bad_run["not_null"].metadata
    assert metadata["failing_rows"].value == 1
    assert metadata["failing_examples"].value == ["id=7: NULL customer_id"]


def test_reconciliation_names_a_change_the_warehouse_missed(tmp_path: Path) -> None:
    shop_path = tmp_path / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, str(tmp_path / "warehouse.duckdb"))
    dg.materialize([asset()], resources=resources)
    # The warehouse holds an older version of order 12 than the source, below the cursor.
    warehouse_execute(
        resources["warehouse"].url,
        "UPDATE demo_shop.orders SET updated_at = updated_at - INTERVAL 1 DAY WHERE id = 12",
    )

    found = evaluations(checks_only(resources))["matches_source"]

    assert not found.passed
    assert "key 12: cursor" in (found.description or "")


def test_reconciliation_sets_aside_rows_changed_at_the_source_after_the_sync(
    tmp_path: Path,
) -> None:
    shop_path = tmp_path / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, str(tmp_path / "warehouse.duckdb"))
    before = evaluations(dg.materialize([asset()], resources=resources))["matches_source"]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(shop_path) as db:
        db.execute("UPDATE orders SET status = 'cancelled', updated_at = ? WHERE id = 3", [later])

    found = evaluations(checks_only(resources))["matches_source"]

    assert found.passed, found.description
    # Rows at the cursor itself count as changed too: the next sync reads them again.
    changed = found.metadata["changed_after_sync"].value
    assert changed == before.metadata["changed_after_sync"].value + 1


def test_a_new_source_column_fails_the_schema_drift_check_as_a_warning(tmp_path: Path) -> None:
    shop_path = tmp_path / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, str(tmp_path / "warehouse.duckdb"))
    dg.materialize([asset()], resources=resources)
    with sqlite3.connect(shop_path) as db:
        db.execute("ALTER TABLE orders ADD COLUMN gift_note TEXT")

    result = dg.materialize([asset()], resources=resources)

    drift = evaluations(result)["schema_unchanged"]
    assert result.success  # a warning does not block
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    assert "appeared: gift_note (string)" in (drift.description or "")


def test_a_dropped_column_under_evolve_is_reported_once(tmp_path: Path) -> None:
    spec = replace(ORDERS, schema_policy="evolve")  # type: ignore[arg-type]
    shop_path = tmp_path / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, str(tmp_path / "warehouse.duckdb"))
    dg.materialize([asset(spec)], resources=resources)
    with sqlite3.connect(shop_path) as db:
        db.execute("ALTER TABLE orders DROP COLUMN currency")

    first = evaluations(dg.materialize([asset(spec)], resources=resources))["schema_unchanged"]
    second = evaluations(dg.materialize([asset(spec)], resources=resources))["schema_unchanged"]

    assert not first.passed and "disappeared: currency" in (first.description or "")
    assert second.passed


def test_a_run_of_the_checks_alone_reports_the_drift_the_next_sync_will_meet(
    tmp_path: Path,
) -> None:
    shop_path = tmp_path / "shop.sqlite"
    shop.build(shop_path)
    resources = shop_resources(shop_path, str(tmp_path / "warehouse.duckdb"))
    dg.materialize([asset()], resources=resources)
    with sqlite3.connect(shop_path) as db:
        db.execute("ALTER TABLE orders ADD COLUMN gift_note TEXT")

    result = checks_only(resources)

    assert result.get_asset_materialization_events() == []
    assert "appeared: gift_note" in (evaluations(result)["schema_unchanged"].description or "")


EVENTS = """CREATE TABLE events (id BIGINT PRIMARY KEY, tenant VARCHAR(20) NOT NULL,
    amount NUMERIC(10, 2), changed_at {timestamp} NOT NULL)"""


@pytest.mark.parametrize("warehouse_kind", ["duckdb", "postgres"])
def test_reconciliation_agrees_from_a_server_source_and_names_a_lost_row(
    source_url: str, warehouse_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The source side's SQL per database (PostgreSQL, MariaDB) against each warehouse's."""
    warehouse = (
        request.getfixturevalue("pg_warehouse_url")
        if warehouse_kind == "postgres"
        else str(tmp_path / "warehouse.duckdb")
    )
    timestamp = "TIMESTAMPTZ" if source_url.startswith("postgresql") else "DATETIME(6)"
    run_sql(
        source_url,
        EVENTS.format(timestamp=timestamp),
        "INSERT INTO events VALUES (1, 'a', 1.50, '2026-11-01 09:00:00.123456'),"
        " (2, 'b', NULL, '2026-11-01 09:00:01'), (3, 'c', 3, '2026-11-02 00:00:00')",
    )
    spec = StreamSpec(
        source="src", object="events", mode="incremental_merge",  # type: ignore[arg-type]
        primary_key=("id",), cursor="changed_at",
    )  # fmt: skip
    events = build_stream_asset(
        spec,
        source_kind="sql",
        checks=declared_checks("src.events", [{"reconcile": True}], CHECK_TYPES),
    )
    resources = {
        source_resource_key("src"): SqlSourceResource(url=source_url, name="src"),
        "warehouse": WarehouseResource(url=warehouse),
    }
    synced = evaluations(dg.materialize([events], resources=resources))["matches_source"]
    warehouse_execute(warehouse, "DELETE FROM src.events WHERE id = 2")

    after_loss = evaluations(
        dg.materialize(
            [events],
            resources=resources,
            selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["src", "events"])),
            raise_on_error=False,
        )
    )["matches_source"]

    assert synced.passed, synced.description
    assert (
        synced.metadata["source_rows"].value == 2
    )  # the row at the cursor is left to the next sync
    assert not after_loss.passed
    assert "key 2: at the source, missing from the warehouse" in (after_loss.description or "")


# Order lines too: dbt's build runs their relationship test to orders along with orders.
STAGING = [
    "staging/stg_demo_shop__orders",
    "staging/stg_demo_shop__customers",
    "staging/stg_demo_shop__order_items",
]
STREAMS = ["demo_shop/orders", "demo_shop/customers", "demo_shop/order_items"]


def sync_and_stage(tmp_path: Path, shop_path: Path) -> dg.ExecuteInProcessResult:
    """Orders (with a blocking range check) and customers synced, then their staging models
    built by dbt, in one run, as `make demo` does."""
    from dw_pipelines.definitions import defs as load_defs
    from dw_pipelines_tests.test_transforms import warehouse_url

    # The file is named like the demo's, so the prepared manifest's relation names fit it.
    url = str(tmp_path / "warehouse.duckdb")
    customers = StreamSpec(source="demo_shop", object="customers", primary_key=("id",))
    items = StreamSpec(source="demo_shop", object="order_items", primary_key=("id",))
    guarded = [{"range": "total_amount", "min": 0}]
    with warehouse_url(url), dg.instance_for_test() as instance:
        dbt_assets = load_defs().get_assets_def(dg.AssetKey(["marts", "customer_360"]))
        return dg.materialize(
            [
                asset(checks=guarded),
                build_stream_asset(customers, source_kind="sqlite"),
                build_stream_asset(items, source_kind="sqlite"),
                dbt_assets,
            ],
            resources=shop_resources(shop_path, url),
            instance=instance,
            selection=[*STREAMS, *STAGING],
            raise_on_error=False,
        )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }


def test_the_staging_models_build_after_the_streams_when_their_checks_pass(tmp_path: Path) -> None:
    shop.build(tmp_path / "shop.sqlite")

    result = sync_and_stage(tmp_path, tmp_path / "shop.sqlite")

    assert result.success
    assert set(STAGING) <= materialized(result)
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_failing_blocking_check_stops_the_dbt_model_downstream(tmp_path: Path) -> None:
    shop.build(tmp_path / "shop.sqlite")
    with sqlite3.connect(tmp_path / "shop.sqlite") as db:
        db.execute("UPDATE orders SET total_amount = -1 WHERE id = 3")

    result = sync_and_stage(tmp_path, tmp_path / "shop.sqlite")

    [failed] = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.check_name == "range_total_amount" and failed.blocking
    assert "id=3: total_amount=-1" in (failed.description or "")
    # The sync itself committed and is recorded; what reads from it did not build.
    assert set(STREAMS) <= materialized(result)
    assert not set(STAGING) & materialized(result)


def test_freshness_is_dagsters_check_failing_until_the_stream_syncs_within_its_window(
    tmp_path: Path,
) -> None:
    from dw_pipelines.ingest.checks import freshness_defs

    [fresh] = declared_checks(ORDERS.stream_id, [{"freshness": "1 day"}], CHECK_TYPES)
    defs = freshness_defs("demo_shop", [(KEY, fresh)])
    shop.build(tmp_path / "shop.sqlite")
    resources = shop_resources(tmp_path / "shop.sqlite", str(tmp_path / "warehouse.duckdb"))
    with dg.instance_for_test() as instance:

        def freshness() -> dg.AssetCheckEvaluation:
            [evaluation] = dg.materialize(
                [asset(checks=[]), *defs.asset_checks],  # type: ignore[list-item]
                resources=resources,
                instance=instance,
                selection=dg.AssetSelection.checks(dg.AssetCheckKey(KEY, "freshness_check")),
            ).get_asset_check_evaluations()
            return evaluation

        never_synced = freshness()
        dg.materialize([asset(checks=[])], resources=resources, instance=instance)
        after_sync = freshness()

    assert not never_synced.passed and never_synced.severity == dg.AssetCheckSeverity.WARN
    assert after_sync.passed
    assert [s.name for s in defs.sensors] == ["demo_shop_freshness_checks_sensor"]  # type: ignore[union-attr]
