"""The dbt transforms as Dagster assets: marts give known results on hand-made raw tables,
dbt tests run as asset checks, and lineage reads stream -> staging -> mart."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

import dw_pipelines
from dw_pipelines.definitions import defs as load_defs
from dw_pipelines.ingest.assets import WAREHOUSE_OP_TAG
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
    query,
)
from dw_pipelines_tests.transforms_data import write_raw_tables, write_raw_tables_postgres

MARTS = ["customer_360", "revenue_pipeline", "daily_sales", "cloud_cost_daily"]


@contextmanager
def warehouse_url(url: str) -> Iterator[None]:
    saved = os.environ.get("DW_WAREHOUSE_URL")
    os.environ["DW_WAREHOUSE_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DW_WAREHOUSE_URL", None)
        else:
            os.environ["DW_WAREHOUSE_URL"] = saved


MANIFEST = Path(dw_pipelines.__file__).parent / "defs/transforms/dbt/target/manifest.json"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return load_defs()


@pytest.fixture(scope="module")
def dbt_assets(defs: dg.Definitions) -> dg.AssetsDefinition:
    return defs.get_assets_def(dg.AssetKey(["marts", "customer_360"]))


def materialize(
    dbt_assets: dg.AssetsDefinition, path: Path, selection: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    # The file is named like the demo's, so the prepared manifest's relation names fit it.
    with warehouse_url(str(path)), dg.instance_for_test() as instance:
        return dg.materialize(
            [dbt_assets], instance=instance, selection=selection, raise_on_error=False
        )


@pytest.fixture(scope="module")
def built(
    dbt_assets: dg.AssetsDefinition, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dg.ExecuteInProcessResult]:
    """One `dbt build` of every model over the fixture's raw tables."""
    path = tmp_path_factory.mktemp("transforms") / "warehouse.duckdb"
    write_raw_tables(path)
    return path, materialize(dbt_assets, path)


def mart(built: tuple[Path, dg.ExecuteInProcessResult], sql: str) -> list[tuple]:
    with duckdb.connect(str(built[0]), read_only=True) as db:
        return db.execute(sql).fetchall()


def test_the_build_succeeds_and_materializes_every_staging_model_and_mart(built) -> None:  # type: ignore[no-untyped-def]
    result = built[1]
    assert result.success
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {f"marts/{m}" for m in MARTS} <= keys
    assert len([k for k in keys if k.startswith("staging/")]) == 11


def test_customer_360_sums_live_orders_returns_and_the_matched_accounts_open_deals(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(
        built,
        "SELECT account_id, account_name, order_count, lifetime_order_value, first_order_at,"
        " last_order_at, returned_item_count, refunded_amount, open_opportunity_count,"
        " open_opportunity_amount FROM marts.customer_360 WHERE customer_id = 1",
    )
    assert rows == [
        ("001A", "Acme", 2, Decimal("70.00"), datetime(2026, 11, 1, 9), datetime(2026, 11, 2, 10),
         1, Decimal("50.00"), 2, Decimal("4000.00")),
    ]  # fmt: skip


def test_customer_360_leaves_a_customer_whose_contact_was_soft_deleted_unmatched(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(
        built, "SELECT account_id, order_count FROM marts.customer_360 WHERE customer_id = 2"
    )
    # Order 12 was cancelled, order 13 was cancelled by a later update: nothing counts.
    assert rows == [(None, 0)]


def test_customer_360_counts_succeeded_payments_net_of_refunds_and_the_failed_ones(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(
        built,
        "SELECT customer_id, payment_count, paid_amount, failed_payment_count, last_paid_at"
        " FROM marts.customer_360 ORDER BY customer_id",
    )
    assert rows == [
        (1, 2, Decimal("55.00"), 1, datetime(2026, 11, 2, 10, 5, tzinfo=UTC)),
        (2, 0, Decimal("0.00"), 1, None),
        (3, 0, Decimal("0.00"), 0, None),
    ]


def test_revenue_pipeline_counts_weights_and_wins_by_stage_and_close_month(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(built, "SELECT * FROM marts.revenue_pipeline ORDER BY close_month, stage")
    half = Decimal("0.5000")
    assert rows == [
        ("Closed Lost", date(2026, 12, 1), 1, Decimal("500.00"), Decimal("0.00"), half),
        ("Closed Won", date(2026, 12, 1), 1, Decimal("2000.00"), Decimal("2000.00"), half),
        ("Prospecting", date(2026, 12, 1), 1, Decimal("1000.00"), Decimal("100.00"), half),
        ("Qualification", date(2027, 1, 1), 1, Decimal("3000.00"), Decimal("600.00"), None),
    ]


def test_daily_sales_counts_each_line_once_and_a_return_under_its_orders_category(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(built, "SELECT * FROM marts.daily_sales ORDER BY sales_date, category")
    assert rows == [
        (date(2026, 11, 1), "coffee", 1, 2, Decimal("20.00"), 0, Decimal("0.00")),
        (date(2026, 11, 2), "equipment", 1, 1, Decimal("50.00"), 0, Decimal("0.00")),
        (date(2026, 11, 3), "equipment", 0, 0, Decimal("0.00"), 1, Decimal("50.00")),
    ]


def test_cloud_cost_daily_counts_a_restated_line_once_at_its_latest_cost(built) -> None:  # type: ignore[no-untyped-def]
    rows = mart(built, "SELECT * FROM marts.cloud_cost_daily ORDER BY usage_date")
    assert rows == [
        (date(2026, 11, 1), "aws", "111", "AmazonEC2", "us-east-1", "USD", 2, 16.0,
         Decimal("2.500000")),
        (date(2026, 11, 2), "aws", "111", "AmazonS3", "eu-west-1", "USD", 1, 100.0,
         Decimal("0.250000")),
    ]  # fmt: skip


def test_staging_drops_provenance_columns(built) -> None:  # type: ignore[no-untyped-def]
    columns = mart(
        built,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging'"
        " AND column_name LIKE '\\_dw\\_%' ESCAPE '\\'",
    )
    assert columns == []


def test_every_dbt_test_runs_as_a_passing_asset_check(built, dbt_assets) -> None:  # type: ignore[no-untyped-def]
    evaluations = built[1].get_asset_check_evaluations()
    assert {e.asset_check_key for e in evaluations} == set(dbt_assets.check_keys)
    assert all(e.passed for e in evaluations)


def test_mart_materializations_carry_row_count_schema_and_column_lineage(built) -> None:  # type: ignore[no-untyped-def]
    events = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in built[1].get_asset_materialization_events()
    }
    metadata = events["marts/customer_360"]
    assert metadata["dagster/row_count"].value == 3
    schema = metadata["dagster/column_schema"].value
    assert {c.name: c.type for c in schema.columns}["order_count"] == "BIGINT"
    lineage = metadata["dagster/column_lineage"].value.deps_by_column
    assert {d.asset_key for d in lineage["lifetime_order_value"]} == {
        dg.AssetKey(["staging", "stg_demo_shop__orders"])
    }


def test_a_failing_dbt_test_fails_its_check_naming_the_offending_value(
    dbt_assets: dg.AssetsDefinition, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    write_raw_tables(path)
    with duckdb.connect(str(path)) as db:
        db.execute("UPDATE salesforce.opportunity SET \"StageName\" = 'Won?' WHERE \"Id\" = '006D'")

    result = materialize(
        dbt_assets,
        path,
        selection=["staging/stg_salesforce__opportunity", "staging/stg_salesforce__account"],
    )

    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == [
        "accepted_values_stg_salesforce__opportunity_stage__Prospecting__Qualification__Proposal_Price_Quote__Negotiation_Review__Closed_Won__Closed_Lost"
    ]
    assert failed[0].metadata["dagster_dbt/failed_row_count"].value == 1
    assert failed[0].description == "Failing rows (first 1): Won?, 1"
    assert failed[0].metadata["failing_examples"].value == [["Won?", "1"]]


def test_the_marts_give_the_same_results_on_a_postgresql_warehouse() -> None:
    name = new_postgres_database("dwt_dbt")
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        write_raw_tables_postgres(url)
        with warehouse_url(url), dg.instance_for_test() as instance:
            # Loaded for this warehouse: dbt's postgres target, its op tag and catalog.
            dbt_assets = load_defs().get_assets_def(dg.AssetKey(["marts", "customer_360"]))
            assert dbt_assets.op.tags[WAREHOUSE_OP_TAG] == "postgres"
            result = dg.materialize([dbt_assets], instance=instance, raise_on_error=False)
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
        assert query(url, "SELECT * FROM marts.revenue_pipeline ORDER BY close_month, stage")[
            3
        ] == ("Qualification", date(2027, 1, 1), 1, Decimal("3000.00"), Decimal("600.00"), None)
        assert query(url, "SELECT * FROM marts.daily_sales ORDER BY sales_date, category") == [
            (date(2026, 11, 1), "coffee", 1, 2, Decimal("20.00"), 0, Decimal("0.00")),
            (date(2026, 11, 2), "equipment", 1, 1, Decimal("50.00"), 0, Decimal("0.00")),
            (date(2026, 11, 3), "equipment", 0, 0, Decimal("0.00"), 1, Decimal("50.00")),
        ]
        assert query(
            url,
            "SELECT account_id, order_count, lifetime_order_value, refunded_amount,"
            " open_opportunity_amount FROM marts.customer_360 ORDER BY customer_id",
        ) == [
            ("001A", 2, Decimal("70.00"), Decimal("50.00"), Decimal("4000.00")),
            (None, 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
            (None, 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
        ]
        costs = query(url, "SELECT usage_date, cost FROM marts.cloud_cost_daily ORDER BY 1")
        assert costs == [
            (date(2026, 11, 1), Decimal("2.500000")),
            (date(2026, 11, 2), Decimal("0.250000")),
        ]
    finally:
        drop_postgres_database(name)


def test_lineage_runs_from_each_stream_through_staging_to_the_marts(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()

    def parents(*path: str) -> set[tuple[str, ...]]:
        return {tuple(k.path) for k in graph.get(dg.AssetKey(list(path))).parent_keys}

    assert parents("staging", "stg_demo_shop__orders") == {("demo_shop", "orders")}
    assert parents("staging", "stg_salesforce__contact") == {("salesforce", "contact")}
    assert parents("marts", "cloud_cost_daily") == {("staging", "stg_aws__cost_and_usage")}
    assert parents("marts", "customer_360") == {
        ("staging", n)
        for n in ("stg_demo_shop__customers", "stg_demo_shop__orders",
                  "stg_partner_drops__returns", "stg_stripe__charges", "stg_salesforce__contact",
                  "stg_salesforce__account", "stg_salesforce__opportunity")
    }  # fmt: skip


def test_staging_and_marts_update_through_eager_automation(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if key.path[0] in ("staging", "marts"):
            assert graph.get(key).automation_condition == dg.AutomationCondition.eager(), key


def test_dbt_steps_carry_the_warehouse_tag_the_executor_serialises(dbt_assets) -> None:  # type: ignore[no-untyped-def]
    assert dbt_assets.op.tags[WAREHOUSE_OP_TAG] == "duckdb"


def test_mart_columns_carry_their_dbt_descriptions(dbt_assets) -> None:  # type: ignore[no-untyped-def]
    spec = next(s for s in dbt_assets.specs if s.key == dg.AssetKey(["marts", "customer_360"]))
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["lifetime_order_value"].startswith("Sum of the order totals")


def test_models_are_grouped_by_layer_with_owners_and_kinds(dbt_assets) -> None:  # type: ignore[no-untyped-def]
    spec = next(s for s in dbt_assets.specs if s.key == dg.AssetKey(["marts", "daily_sales"]))
    assert spec.group_name == "marts"
    assert spec.kinds == {"dbt", "duckdb"}
    assert spec.owners == ["team:analytics-engineering"]


def test_loading_selects_every_model_and_test_dbts_own_selector_would(dbt_assets) -> None:  # type: ignore[no-untyped-def]
    """Loading reads the default selection from the manifest rather than asking dbt's selector
    (most of a second per load): the models and tests it yields are the ones dbt picks."""
    from dagster_dbt.utils import select_unique_ids

    manifest = json.loads(MANIFEST.read_text())
    by_dbt = [manifest["nodes"][i] for i in select_unique_ids("fqn:*", "", "", None, manifest)]
    assert {n["name"] for n in by_dbt if n["resource_type"] == "model"} == {
        spec.key.path[-1] for spec in dbt_assets.specs if spec.key.path[0] in ("staging", "marts")
    }
    assert sum(n["resource_type"] == "test" for n in by_dbt) == len(list(dbt_assets.check_specs))


def test_daily_sales_second_run_rebuilds_only_the_recent_days(
    dbt_assets: dg.AssetsDefinition, tmp_path: Path
) -> None:
    def add_order(db: duckdb.DuckDBPyConnection, order_id: int, day: str) -> None:
        db.execute(
            "INSERT INTO demo_shop.orders VALUES"
            f" ({order_id}, 1, 'paid', 'EUR', 10.00, '{day} 09:00', '{day} 09:00', '{day} 09:00', now())"
        )
        db.execute(
            "INSERT INTO demo_shop.order_items VALUES"
            f" ({order_id * 10}, {order_id}, 1, 1, 10.00, 0.00, '{day} 09:00', '{day} 09:00', now())"
        )

    path = tmp_path / "warehouse.duckdb"
    write_raw_tables(path)
    with duckdb.connect(str(path)) as db:
        add_order(db, 14, "2026-11-10")  # the days held now span more than the 3 rebuilt
    first = materialize(dbt_assets, path)
    with duckdb.connect(str(path)) as db:
        add_order(db, 15, "2026-11-11")
        # A line added late to an order of Nov 1: older than the 3 days the next run rebuilds.
        db.execute(
            "INSERT INTO demo_shop.order_items VALUES"
            " (105, 10, 2, 1, 50.00, 0.00, '2026-11-01 09:00', '2026-11-12 09:00', now())"
        )
    second = materialize(dbt_assets, path, selection=["marts/daily_sales"])

    assert first.success and second.success
    assert mart(
        (path, second), "SELECT * FROM marts.daily_sales ORDER BY sales_date, category"
    ) == [
        (date(2026, 11, 1), "coffee", 1, 2, Decimal("20.00"), 0, Decimal("0.00")),  # kept as built
        (date(2026, 11, 2), "equipment", 1, 1, Decimal("50.00"), 0, Decimal("0.00")),
        (date(2026, 11, 3), "equipment", 0, 0, Decimal("0.00"), 1, Decimal("50.00")),
        (date(2026, 11, 10), "coffee", 1, 1, Decimal("10.00"), 0, Decimal("0.00")),
        (date(2026, 11, 11), "coffee", 1, 1, Decimal("10.00"), 0, Decimal("0.00")),
    ]
