"""The production deployment in tests: docker/dagster.yaml on a throwaway PostgreSQL database,
and the three processes `make serve` runs (docker/bin/*), each on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def instance_env(db_name: str, home: Path) -> dict[str, str]:
    """The variables docker/dagster.yaml reads, for the machine's PostgreSQL (trust auth)."""
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_HOST": PG_HOST,
        "DAGSTER_POSTGRES_PORT": str(PG_PORT),
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_PASSWORD": "",
        "DAGSTER_POSTGRES_DB": db_name,
    }


@contextlib.contextmanager
def production_home(prefix: str = "dwt_dagster") -> Iterator[dict[str, str]]:
    """A DAGSTER_HOME holding docker/dagster.yaml and a fresh database for it; yields its env."""
    db_name = new_postgres_database(prefix)
    home = Path(tempfile.mkdtemp(prefix="dagster_home_"))
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    try:
        yield instance_env(db_name, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        drop_postgres_database(db_name)


@contextlib.contextmanager
def production_instance() -> Iterator[dg.DagsterInstance]:
    with production_home() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                yield instance
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
