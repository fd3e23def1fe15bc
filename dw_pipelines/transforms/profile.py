"""The dbt target for the warehouse named by DW_WAREHOUSE_URL.

The project's `profiles.yml` reads only variables this module derives from the one URL the syncs
use (`DW_DBT_*`, and dbt's own `DBT_ENV_SECRET_*` for the Postgres password and the BigQuery key
file, whose values dbt scrubs from everything it logs), so dbt and the syncs always write to the
same warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL

POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+")
# The emulator takes any bearer token; dbt-bigquery has no anonymous credentials method.
EMULATOR_TOKEN = "emulator-accepts-any-token"
POSTGRES_PASSWORD_ENV = "DBT_ENV_SECRET_DW_PG_PASSWORD"
BIGQUERY_KEYFILE_ENV = "DBT_ENV_SECRET_DW_BIGQUERY_KEYFILE"


def dbt_env(url: str | None = None, cwd: Path | None = None) -> dict[str, str]:
    """The `DW_DBT_*` variables for `url` (default: DW_WAREHOUSE_URL, then the demo's file).

    A relative DuckDB path is made absolute against `cwd`: dbt runs in the project folder.
    `DW_DBT_SCHEMA_PREFIX` is what the warehouse puts before a schema's name (BigQuery's dataset
    prefix and `_`), read by the sources and `generate_schema_name`.
    """
    url = url or os.environ.get("DW_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
    if url.startswith(POSTGRES_PREFIXES):
        # Parsed as the syncs parse it (a password may hold `@` or `/`).
        from dw_pipelines.sync.urls import parse_url

        parsed = parse_url(url)
        return {
            "DW_DBT_TARGET": "postgres",
            "DW_DBT_SCHEMA_PREFIX": "",
            "DW_DBT_PG_HOST": parsed.host or "127.0.0.1",
            "DW_DBT_PG_PORT": str(parsed.port or 5432),
            "DW_DBT_PG_USER": parsed.username or "postgres",
            POSTGRES_PASSWORD_ENV: parsed.password or "",
            "DW_DBT_PG_DBNAME": parsed.database or "postgres",
        }
    if url.startswith("bigquery://"):
        return bigquery_env(url)
    if "://" in url and not url.startswith("duckdb:"):
        raise ValueError(f"no dbt target for warehouse URL scheme {url.split('://')[0]!r}")
    path = Path(url.removeprefix("duckdb:///").removeprefix("duckdb://"))
    return {
        "DW_DBT_TARGET": "duckdb",
        "DW_DBT_SCHEMA_PREFIX": "",
        "DW_DBT_DUCKDB_PATH": str((cwd or Path.cwd()) / path if not path.is_absolute() else path),
    }


def bigquery_env(url: str) -> dict[str, str]:
    """dbt-bigquery's settings for a `bigquery://project/dataset_prefix` URL: schema `s` is
    dataset `<prefix>_s`, as for the syncs. Credentials as the syncs find them: none for an
    emulator (`endpoint=`), the key file of DW_BIGQUERY_CREDENTIALS_FILE, or else Application
    Default Credentials. Unset values are empty (profiles.yml passes them on as none)."""
    from dw_pipelines import settings
    from dw_pipelines.sync.urls import parse_bigquery_url

    target = parse_bigquery_url(url)
    keyfile = settings.bigquery_credentials_file()
    if target.endpoint:
        method = "oauth-secrets"
    elif keyfile:
        method = "service-account"
    else:
        method = "oauth"
    return {
        "DW_DBT_TARGET": "bigquery",
        "DW_DBT_SCHEMA_PREFIX": f"{target.dataset_prefix}_" if target.dataset_prefix else "",
        "DW_DBT_BQ_PROJECT": target.project,
        "DW_DBT_BQ_LOCATION": target.location or "",
        "DW_DBT_BQ_ENDPOINT": target.endpoint or "",
        "DW_DBT_BQ_METHOD": method,
        "DW_DBT_BQ_TOKEN": EMULATOR_TOKEN if target.endpoint else "",
        "DW_DBT_BQ_TIMEOUT": str(int(target.timeout_s)) if target.timeout_s else "",
        BIGQUERY_KEYFILE_ENV: keyfile if method == "service-account" else "",
    }
