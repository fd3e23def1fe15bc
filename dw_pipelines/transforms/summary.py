"""A few lines of each mart, for the demo's closing summary."""

from __future__ import annotations

import os

from dw_pipelines import settings
from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL, open_warehouse

MARTS = {
    "customer_360": "lifetime_order_value DESC",
    "revenue_pipeline": "close_month, stage",
    "daily_sales": "sales_date DESC, category",
    "cloud_cost_daily": "usage_date DESC, cost DESC",
}


def print_marts(url: str | None = None, rows: int = 3) -> None:
    """Print each mart's row count and its first `rows` rows; a mart not built yet says so."""
    url = url or os.environ.get(settings.WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL
    warehouse = open_warehouse(url)
    try:
        print("\nMarts built by dbt:")
        for name, order in MARTS.items():
            table = warehouse.table("marts", name)
            if not warehouse.table_exists("marts", name):
                print(f"\n  marts.{name}: not built yet")
                continue
            count = warehouse.scalar(f"SELECT count(*) FROM {table}")
            columns = [
                c
                for (c,) in warehouse.rows(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    ["marts", name],
                )
            ]
            print(f"\n  marts.{name} ({count} rows)\n    " + " | ".join(columns))
            for row in warehouse.rows(f"SELECT * FROM {table} ORDER BY {order} LIMIT {rows:d}"):
                print("    " + " | ".join("" if v is None else str(v) for v in row))
    finally:
        warehouse.close()
