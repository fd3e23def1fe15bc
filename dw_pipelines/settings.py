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
LOG_FORMAT_ENV = "DW_LOG_FORMAT"
ALERT_WEBHOOK_URL_ENV = "DW_ALERT_WEBHOOK_URL"
UI_BASE_URL_ENV = "DW_UI_BASE_URL"
# A service-account key file for BigQuery; unset: Application Default Credentials.
BIGQUERY_CREDENTIALS_FILE_ENV = "DW_BIGQUERY_CREDENTIALS_FILE"

DEFAULT_INCREMENTAL_CRON = "0 * * * *"  # hourly: incremental syncs cost what changed
DEFAULT_FULL_REFRESH_CRON = "0 3 * * *"  # nightly: full reloads read whole tables
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"  # where `make dev` serves the UI


def warehouse_url_is_set() -> bool:
    return bool(os.environ.get(WAREHOUSE_URL_ENV))


def warehouse_url() -> str:
    return os.environ.get(WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL


def warehouse_kind() -> str:
    """`postgres`, `bigquery` or `duckdb`, by the rule `open_warehouse` itself uses."""
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
    if warehouse_kind() == "bigquery":
        from dw_pipelines.sync.urls import MalformedUrl, parse_bigquery_url

        try:
            return parse_bigquery_url(url).project
        except MalformedUrl:
            return "bigquery"
    return os.path.splitext(os.path.basename(url))[0] or "warehouse"


def duckdb_memory_limit() -> str | None:
    """DuckDB's memory cap for a sync (it spills to disk beyond); None: the engine's default."""
    return os.environ.get(DUCKDB_MEMORY_LIMIT_ENV) or None


def incremental_cron() -> str:
    return os.environ.get(INCREMENTAL_CRON_ENV, DEFAULT_INCREMENTAL_CRON)


def full_refresh_cron() -> str:
    return os.environ.get(FULL_REFRESH_CRON_ENV, DEFAULT_FULL_REFRESH_CRON)


def log_format() -> str:
    """`json` or `text`: how each stream sync's summary line is written (anything else: text,
    so a typo never fails a sync whose rows are already committed)."""
    return "json" if os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json" else "text"


def alert_webhook_url() -> str | None:
    """The Slack-style incoming webhook alerts are posted to; None: alerts are off.
    The URL is a secret (whoever holds it can post): it is never shown, only used."""
    return os.environ.get(ALERT_WEBHOOK_URL_ENV, "").strip() or None


def ui_base_url() -> str:
    """The Dagster UI as the people alerted reach it, for links to runs."""
    return (os.environ.get(UI_BASE_URL_ENV, "").strip() or DEFAULT_UI_BASE_URL).rstrip("/")


def bigquery_credentials_file() -> str | None:
    """The key file BigQuery's client authenticates with (its path is shown nowhere)."""
    return os.environ.get(BIGQUERY_CREDENTIALS_FILE_ENV, "").strip() or None


DEAD_RUN_INTERVAL_ENV = "DW_DEAD_RUN_SENSOR_INTERVAL_SECONDS"
DEFAULT_DEAD_RUN_INTERVAL_S = 30


def dead_run_interval_s() -> int:
    """How often dead_run_sensor looks for runs whose process is gone."""
    return int(os.environ.get(DEAD_RUN_INTERVAL_ENV, DEFAULT_DEAD_RUN_INTERVAL_S))
