"""The warehouse every stream loads into: embedded DuckDB by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.sync.warehouses import open_warehouse

if TYPE_CHECKING:
    from dw_pipelines.sync.warehouses.base import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """`url` is a DuckDB file path (default `.dw/warehouse.duckdb`) or a `postgresql://` URL."""

    url: str

    @classmethod
    def from_env(cls) -> WarehouseResource:
        """DW_WAREHOUSE_URL as `dg.EnvVar` when set, so a password never shows; else the default."""
        if settings.warehouse_url_is_set():
            return cls(url=dg.EnvVar(settings.WAREHOUSE_URL_ENV))
        return cls(url=settings.warehouse_url())

    @contextmanager
    def open(self, run_id: str | None = None) -> Iterator[Warehouse]:
        """`run_id`: the Dagster run, named in the ids of the warehouse's jobs (BigQuery)."""
        warehouse = open_warehouse(self.url, run_id=run_id)
        try:
            yield warehouse
        finally:
            warehouse.close()
