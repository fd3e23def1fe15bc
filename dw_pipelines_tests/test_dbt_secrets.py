"""The warehouse password reaches dbt in a variable dbt scrubs: whatever dbt prints or logs
about a Postgres target, the password is never in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dw_pipelines
from dw_pipelines.transforms.profile import dbt_env
from dw_pipelines_tests.conftest import PG_HOST, PG_PORT, require_service

DBT_PROJECT = Path(dw_pipelines.__file__).parent / "defs/transforms/dbt"
# PostgreSQL trusts loopback connections, so this password is sent but never checked.
PASSWORD = "dw-probe-7c1f-unscrubbed"


def test_a_dbt_failure_on_postgres_never_shows_the_warehouse_password(tmp_path: Path) -> None:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = f"postgresql://postgres:{PASSWORD}@{PG_HOST}:{PG_PORT}/postgres"
    # A connection or query failure names no password by itself: the database's own error
    # message is made to quote it, as a value a query happened to carry would be.
    dbt = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "show", "--inline",
         f"select '{PASSWORD}'::int", "--log-format", "json", "--project-dir", str(DBT_PROJECT),
         "--profiles-dir", str(DBT_PROJECT), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        env={**os.environ, **dbt_env(url)}, capture_output=True, text=True,
    )  # fmt: skip

    assert dbt.returncode != 0
    assert "invalid input syntax for type integer" in dbt.stdout
    assert "*****" in dbt.stdout  # the message quoted it, and dbt scrubbed it
    log = (tmp_path / "logs" / "dbt.log").read_text()
    for output in (dbt.stdout, dbt.stderr, log):
        assert PASSWORD not in output
