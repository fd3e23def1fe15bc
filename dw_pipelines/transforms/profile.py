"""The dbt target for the warehouse named by DW_WAREHOUSE_URL.

The project's `profiles.yml` reads only `DW_DBT_*` variables; this module derives them from the
one URL the syncs use, so dbt and the syncs always write to the same warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL

POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+")


def dbt_env(url: str | None = None, cwd: Path | None = None) -> dict[str, str]:
    """The `DW_DBT_*` variables for `url` (default: DW_WAREHOUSE_URL, then the demo's file).

    A relative DuckDB path is made absolute against `cwd`: dbt runs in the project folder.
    """
    url = url or os.environ.get("DW_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
    if url.startswith(POSTGRES_PREFIXES):
        # Parsed as the syncs parse it (a password may hold `@` or `/`).
        from dw_pipelines.sync.urls import parse_url

        parsed = parse_url(url)
        return {
            "DW_DBT_TARGET": "postgres",
            "DW_DBT_PG_HOST": parsed.host or "127.0.0.1",
            "DW_DBT_PG_PORT": str(parsed.port or 5432),
            "DW_DBT_PG_USER": parsed.username or "postgres",
            "DW_DBT_PG_PASSWORD": parsed.password or "",
            "DW_DBT_PG_DBNAME": parsed.database or "postgres",
        }
    if "://" in url and not url.startswith("duckdb:"):
        # e.g. bigquery://: a target is added to profiles.yml with that warehouse.
        raise ValueError(f"no dbt target for warehouse URL scheme {url.split('://')[0]!r}")
    path = Path(url.removeprefix("duckdb:///").removeprefix("duckdb://"))
    return {
        "DW_DBT_TARGET": "duckdb",
        "DW_DBT_DUCKDB_PATH": str((cwd or Path.cwd()) / path if not path.is_absolute() else path),
    }
