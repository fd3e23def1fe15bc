"""The dbt target derived from DW_WAREHOUSE_URL: dbt writes where the syncs write, and
authenticates to BigQuery as the syncs do."""

from __future__ import annotations

import pytest

from dw_pipelines.transforms.profile import BIGQUERY_KEYFILE_ENV, POSTGRES_PASSWORD_ENV, dbt_env


def test_a_bigquery_url_names_the_project_location_and_the_dataset_prefix_of_every_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DW_BIGQUERY_CREDENTIALS_FILE", raising=False)
    env = dbt_env("bigquery://acme-prod/dw?location=EU&timeout=45")
    assert env["DW_DBT_TARGET"] == "bigquery"
    assert env["DW_DBT_BQ_PROJECT"] == "acme-prod"
    assert env["DW_DBT_BQ_LOCATION"] == "EU"
    assert env["DW_DBT_BQ_TIMEOUT"] == "45"
    assert env["DW_DBT_SCHEMA_PREFIX"] == "dw_"  # dataset dw_marts, as the syncs' dw_demo_shop


def test_bigquery_without_a_key_file_uses_application_default_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DW_BIGQUERY_CREDENTIALS_FILE", raising=False)
    env = dbt_env("bigquery://acme-prod/dw")
    assert (env["DW_DBT_BQ_METHOD"], env[BIGQUERY_KEYFILE_ENV]) == ("oauth", "")


def test_a_key_file_goes_to_dbt_in_a_variable_dbt_scrubs_from_its_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DW_BIGQUERY_CREDENTIALS_FILE", "/secrets/sa.json")
    env = dbt_env("bigquery://acme-prod/dw")
    assert BIGQUERY_KEYFILE_ENV.startswith("DBT_ENV_SECRET_")
    assert (env["DW_DBT_BQ_METHOD"], env[BIGQUERY_KEYFILE_ENV]) == (
        "service-account",
        "/secrets/sa.json",
    )
    assert "/secrets/sa.json" not in [v for k, v in env.items() if k != BIGQUERY_KEYFILE_ENV]


def test_an_emulator_endpoint_needs_no_google_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_BIGQUERY_CREDENTIALS_FILE", "/secrets/sa.json")
    env = dbt_env("bigquery://dw-test/t1?endpoint=http://127.0.0.1:9050")
    assert env["DW_DBT_BQ_ENDPOINT"] == "http://127.0.0.1:9050"
    assert env["DW_DBT_BQ_METHOD"] == "oauth-secrets"
    assert env[BIGQUERY_KEYFILE_ENV] == ""


@pytest.mark.parametrize("url", [".dw/warehouse.duckdb", "postgresql://postgres@127.0.0.1:5432/dw"])
def test_other_warehouses_put_nothing_before_a_schema_name(url: str) -> None:
    assert dbt_env(url)["DW_DBT_SCHEMA_PREFIX"] == ""


def test_a_postgres_password_goes_to_dbt_in_a_variable_dbt_scrubs_from_its_logs() -> None:
    env = dbt_env("postgresql://dw:s3cret@127.0.0.1:5432/dw")
    assert POSTGRES_PASSWORD_ENV.startswith("DBT_ENV_SECRET_")
    assert env[POSTGRES_PASSWORD_ENV] == "s3cret"
    assert "s3cret" not in [v for k, v in env.items() if k != POSTGRES_PASSWORD_ENV]
