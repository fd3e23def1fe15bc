"""A source whose environment variable is unset fails its own streams only, saying what to set."""

from __future__ import annotations

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.ingest.jobs import all_streams_job
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines_tests.conftest import run_sql, warehouse_rows

CATALOG = """
sources:
  shop: {type: postgres, url_env: T_SHOP_URL}
  crm: {type: postgres, url_env: T_CRM_URL}
streams:
  - {source: shop, object: orders}
  - {source: crm, object: accounts}
"""


@pytest.fixture
def run(pg_source_url, duckdb_warehouse_url, monkeypatch) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int PRIMARY KEY)",
        "INSERT INTO orders VALUES (1), (2)",
    )
    monkeypatch.setenv("T_SHOP_URL", pg_source_url)
    monkeypatch.delenv("T_CRM_URL", raising=False)
    catalog = StreamCatalog.resolve_from_yaml(CATALOG).build_defs(None)  # type: ignore[arg-type]
    defs = dg.Definitions.merge(
        catalog,
        dg.Definitions(
            jobs=[all_streams_job],
            resources={"warehouse": WarehouseResource(url=duckdb_warehouse_url)},
        ),
    )
    return defs.resolve_job_def("all_streams_job").execute_in_process(raise_on_error=False)


def test_the_configured_source_still_syncs(run, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    assert [m.asset_key for m in run.asset_materializations_for_node("shop__orders")] == [
        dg.AssetKey(["shop", "orders"])
    ]
    assert warehouse_rows(duckdb_warehouse_url, "SELECT count(*) FROM shop.orders") == [(2,)]


def test_the_unconfigured_source_fails_naming_the_source_and_the_variable(run) -> None:  # type: ignore[no-untyped-def]
    [failure] = [e for e in run.all_events if e.is_step_failure]
    assert failure.step_key == "crm__accounts"
    description = failure.step_failure_data.user_failure_data.description
    assert "source 'crm'" in description and "T_CRM_URL" in description
