"""Where things live, decided in one place from the environment (read when asked, not at import)."""

from __future__ import annotations

import os

import dagster as dg

from dw_pipelines.sync.urls import MalformedUrl, parse_url
from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL

WAREHOUSE_URL_ENV = "DW_WAREHOUSE_URL"


def warehouse_url_config() -> str | dg.EnvVar:
    """The warehouse resource's URL: the env var itself when set, so a password never shows."""
    if os.environ.get(WAREHOUSE_URL_ENV):
        return dg.EnvVar(WAREHOUSE_URL_ENV)
    return DEFAULT_WAREHOUSE_URL


def warehouse_kind() -> str:
    url = os.environ.get(WAREHOUSE_URL_ENV, "")
    return "postgres" if url.startswith(("postgresql", "postgres:")) else "duckdb"


def warehouse_catalog() -> str:
    """The first part of `dagster/table_name`: the DuckDB file's name or the PostgreSQL database."""
    url = os.environ.get(WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL
    if warehouse_kind() == "postgres":
        # Parsed, not split on '/': a password may hold one, and this name is shown in the UI.
        try:
            return parse_url(url).database or "postgres"
        except MalformedUrl:
            return "postgres"
    return os.path.splitext(os.path.basename(url))[0] or "warehouse"
