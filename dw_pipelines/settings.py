"""Where things live and how often they run, decided in one place from the environment.

Every environment variable of the code location is read here, when asked (never at import),
and nothing here imports Dagster: the engine reads its settings from this module too. A
source's own variables are the exception by design: the YAML names them and the source's
resource reads them when a sync opens it (see `dw_pipelines.resources.env`).
"""

from __future__ import annotations

import os

from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL, warehouse_kind_of

WAREHOUSE_URL_ENV = "DW_WAREHOUSE_URL"
DUCKDB_MEMORY_LIMIT_ENV = "DW_DUCKDB_MEMORY_LIMIT"
INCREMENTAL_CRON_ENV = "DW_INCREMENTAL_CRON"
FULL_REFRESH_CRON_ENV = "DW_FULL_REFRESH_CRON"

DEFAULT_INCREMENTAL_CRON = "0 * * * *"  # hourly: incremental syncs cost what changed
DEFAULT_FULL_REFRESH_CRON = "0 3 * * *"  # nightly: full reloads read whole tables


def warehouse_url_is_set() -> bool:
    return bool(os.environ.get(WAREHOUSE_URL_ENV))


def warehouse_url() -> str:
    return os.environ.get(WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL


def warehouse_kind() -> str:
    """`postgres` or `duckdb`, by the rule `open_warehouse` itself uses."""
    return warehouse_kind_of(warehouse_url())


def warehouse_catalog() -> str:
    """The first part of `dagster/table_name`: the DuckDB file's name or the PostgreSQL database."""
    url = warehouse_url()
    if warehouse_kind() == "postgres":
        # SQLAlchemy parses it, loaded only for a PostgreSQL warehouse (definitions stay light).
        from dw_pipelines.sync.urls import MalformedUrl, parse_url

        # Parsed, not split on '/': a password may hold one, and this name is shown in the UI.
        try:
            return parse_url(url).database or "postgres"
        except MalformedUrl:
            return "postgres"
    return os.path.splitext(os.path.basename(url))[0] or "warehouse"


def duckdb_memory_limit() -> str | None:
    """DuckDB's memory cap for a sync (it spills to disk beyond); None: the engine's default."""
    return os.environ.get(DUCKDB_MEMORY_LIMIT_ENV) or None


def incremental_cron() -> str:
    return os.environ.get(INCREMENTAL_CRON_ENV, DEFAULT_INCREMENTAL_CRON)


def full_refresh_cron() -> str:
    return os.environ.get(FULL_REFRESH_CRON_ENV, DEFAULT_FULL_REFRESH_CRON)


DEAD_RUN_INTERVAL_ENV = "DW_DEAD_RUN_SENSOR_INTERVAL_SECONDS"
DEFAULT_DEAD_RUN_INTERVAL_S = 30


def dead_run_interval_s() -> int:
    """How often dead_run_sensor looks for runs whose process is gone."""
    return int(os.environ.get(DEAD_RUN_INTERVAL_ENV, DEFAULT_DEAD_RUN_INTERVAL_S))
