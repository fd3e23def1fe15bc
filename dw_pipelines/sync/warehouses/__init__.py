"""Warehouses the engine loads into, chosen by URL: a DuckDB path, a postgresql:// URL or a
bigquery://project/dataset_prefix URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dw_pipelines.sync.warehouses.base import SYNCED_AT, Warehouse

DEFAULT_WAREHOUSE_URL = ".dw/warehouse.duckdb"


def warehouse_kind_of(url: str) -> str:
    """`postgres` for a PostgreSQL URL, `bigquery` for a BigQuery one, `duckdb` for anything
    else (a file path)."""
    if url.startswith("bigquery://"):
        return "bigquery"
    return (
        "postgres" if url.startswith(("postgresql://", "postgres://", "postgresql+")) else "duckdb"
    )


def open_warehouse(url: str | None = None, *, run_id: str | None = None) -> Warehouse:
    """`run_id`: the orchestrator's run, named in the ids of BigQuery's jobs."""
    url = url or DEFAULT_WAREHOUSE_URL
    if warehouse_kind_of(url) == "bigquery":
        from dw_pipelines import settings
        from dw_pipelines.sync.warehouses.bigquery import BigQueryWarehouse

        return BigQueryWarehouse(
            url, credentials_file=settings.bigquery_credentials_file(), run_id=run_id
        )
    if warehouse_kind_of(url) == "postgres":
        from dw_pipelines.sync.warehouses.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    from dw_pipelines.sync.warehouses.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(url.removeprefix("duckdb:///").removeprefix("duckdb://"))


__all__ = ["DEFAULT_WAREHOUSE_URL", "SYNCED_AT", "Warehouse", "open_warehouse", "warehouse_kind_of"]
