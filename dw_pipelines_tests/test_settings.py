"""The environment is read in one module, which the Dagster-free engine can import too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dw_pipelines import settings


def test_settings_and_the_engine_import_without_dagster() -> None:
    code = (
        "import sys, dw_pipelines.settings, dw_pipelines.sync.warehouses.duckdb;"
        " sys.exit('dagster' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("postgresql://u@h/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("postgresql+psycopg://u@h/db", "postgres"),
        (".dw/warehouse.duckdb", "duckdb"),
        ("/data/postgres_copy.duckdb", "duckdb"),
    ],
)
def test_the_warehouse_kind_follows_the_rule_open_warehouse_uses(
    url: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.WAREHOUSE_URL_ENV, url)
    assert settings.warehouse_kind() == kind


def test_schedule_crons_come_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.INCREMENTAL_CRON_ENV, "*/5 * * * *")
    monkeypatch.delenv(settings.FULL_REFRESH_CRON_ENV, raising=False)
    assert (settings.incremental_cron(), settings.full_refresh_cron()) == (
        "*/5 * * * *",
        settings.DEFAULT_FULL_REFRESH_CRON,
    )
