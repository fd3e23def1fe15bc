"""Shared fixtures: throwaway databases on the machine's real PostgreSQL and MariaDB servers.

A test that needs a service skips when it is unreachable on a developer's machine, and fails
when `CI` is set, so CI can never go green without having run it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

# The Salesforce and REST API fakes and the UI tests' webserver have their fixtures in their own
# modules.
pytest_plugins = [
    "dw_pipelines_tests.salesforce_fixtures",
    "dw_pipelines_tests.rest_fixtures",
    "dw_pipelines_tests.ui_fixtures",
    "dw_pipelines_tests.bigquery_fixtures",
]

PG_HOST, PG_PORT = os.environ.get("DW_TEST_PG_HOST", "127.0.0.1"), 5432
MYSQL_HOST, MYSQL_PORT = os.environ.get("DW_TEST_MYSQL_HOST", "127.0.0.1"), 3306
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres"
MYSQL_ADMIN_URL = f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/"


def missing_in_ci_fails(message: str) -> NoReturn:
    """A test whose service or tool is missing: skipped on a developer's machine, failed in CI
    (where `.ci/run` provides everything), so a skip can never hide a failure there."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_service(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        missing_in_ci_fails(f"{name} is not reachable at {host}:{port}: {exc}")


def _admin_execute(url: str, *statements: str) -> None:
    # Straight to the driver without parameters, so '%' in SQL is just the modulo operator.
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
    finally:
        connection.close()
        engine.dispose()


def new_postgres_database(prefix: str) -> str:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_execute(PG_ADMIN_URL, f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    # A database with replication slots (CDC tests) cannot be dropped until they are.
    _admin_execute(
        PG_ADMIN_URL,
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
        f" WHERE database = '{name}' AND active_pid IS NOT NULL",
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        f" WHERE database = '{name}' AND NOT active",
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
    )


@pytest.fixture
def pg_source_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database to use as a source (SQLAlchemy/libpq URL)."""
    name = new_postgres_database("dwt_src")
    yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    drop_postgres_database(name)


@pytest.fixture(scope="session")
def logical_wal() -> None:
    """CDC tests need the server at wal_level=logical (.ci/run sets it; see the README)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    level = query(PG_ADMIN_URL, "SHOW wal_level")[0][0]
    if level != "logical":
        missing_in_ci_fails(
            f"PostgreSQL runs with wal_level={level}; CDC tests need logical: run"
            " `ALTER SYSTEM SET wal_level = logical` and restart it (.ci/run does)"
        )


@pytest.fixture
def mysql_source_url() -> Iterator[str]:
    """A fresh, empty MariaDB database to use as a source."""
    require_service("MariaDB", MYSQL_HOST, MYSQL_PORT)
    name = f"dwt_src_{uuid.uuid4().hex[:10]}"
    _admin_execute(MYSQL_ADMIN_URL, f"CREATE DATABASE `{name}`")
    yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    _admin_execute(MYSQL_ADMIN_URL, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def pg_warehouse_url() -> Iterator[str]:
    name = new_postgres_database("dwt_wh")
    yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    drop_postgres_database(name)


@pytest.fixture
def duckdb_warehouse_url(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per warehouse: embedded DuckDB and PostgreSQL."""
    fixture = "pg_warehouse_url" if request.param == "postgres" else "duckdb_warehouse_url"
    return request.getfixturevalue(fixture)


@pytest.fixture(params=["postgres", "mysql"])
def source_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per source server: PostgreSQL and MariaDB."""
    fixture = "pg_source_url" if request.param == "postgres" else "mysql_source_url"
    return request.getfixturevalue(fixture)


def run_sql(url: str, *statements: str) -> None:
    """Run statements on a source database (autocommit), e.g. to create and change test data."""
    from dw_pipelines.sync.urls import sqlalchemy_url

    _admin_execute(sqlalchemy_url(url).render_as_string(hide_password=False), *statements)


def query(url: str, sql: str) -> list[tuple]:
    from dw_pipelines.sync.urls import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql(sql)]
    engine.dispose()
    return rows


def warehouse_rows(warehouse_url: str, sql: str) -> list[tuple]:
    """Rows of a query against a warehouse (DuckDB path or PostgreSQL URL).

    PostgreSQL is read with psycopg, a different driver from the one that loaded it, so that
    values (exact Decimals, aware datetimes) are checked independently of the load path."""
    from dw_pipelines.sync.warehouses import open_warehouse

    if warehouse_url.startswith("postgresql"):
        return query(warehouse_url, sql)

    warehouse = open_warehouse(warehouse_url)
    try:
        return [tuple(r) for r in warehouse.rows(sql)]
    finally:
        warehouse.close()


def run_sync(
    source_url: str,
    warehouse_url: str,
    *,
    window: object | None = None,
    batch_rows: int = 50_000,
    **spec: object,
):
    """Sync one stream of source `src` with real engine objects, closing them afterwards."""
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    source = SqlSource(source_url, name="src", batch_rows=batch_rows)
    warehouse = open_warehouse(warehouse_url)
    try:
        return sync_stream(StreamSpec(source="src", **spec), source, warehouse, window=window)  # type: ignore[arg-type]
    finally:
        warehouse.close()
        source.close()


def run_cdc(
    source_url: str,
    warehouse_url: str,
    *streams: dict[str, object],
    resnapshot: bool = False,
    **options: object,
):
    """One CDC run of source `src` over these streams (StreamSpec fields), with real objects."""
    from dw_pipelines.sync.cdc.runner import CdcOptions, sync_postgres_cdc
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    specs = [StreamSpec(source="src", mode="cdc", **s) for s in streams]  # type: ignore[arg-type]
    source = SqlSource(source_url, name="src")
    warehouse = open_warehouse(warehouse_url)
    try:
        return sync_postgres_cdc(
            "src",
            specs,
            source,
            warehouse,
            options=CdcOptions(**options),
            resnapshot=resnapshot,  # type: ignore[arg-type]
        )
    finally:
        warehouse.close()
        source.close()


# -- S3 (a real S3-compatible server, SeaweedFS, over HTTP) --------------------------------------


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One SeaweedFS `weed mini` for the session, on free loopback ports."""
    from dw_pipelines.devservices import s3_server

    try:
        s3_server.weed_binary()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    server = s3_server.start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def bucket(local_s3) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A new empty bucket for one test, emptied and removed afterwards (its volumes freed)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = local_s3.client()
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys})
    client.delete_bucket(Bucket=name)


def s3_resource(local_s3):  # type: ignore[no-untyped-def]
    from dw_pipelines.resources.s3 import S3Resource

    return S3Resource(
        endpoint_url=local_s3.endpoint_url,
        access_key_id=local_s3.access_key_id,
        secret_access_key=local_s3.secret_access_key,
        region="us-east-1",
        path_style=True,
    )


def run_files(
    local_s3,
    warehouse_url: str,
    bucket: str,
    *,
    partition=None,
    max_files=None,
    keys=None,
    **spec: object,
):  # type: ignore[no-untyped-def]
    """Load one file stream `drops.<name>` with real objects: boto3 against the local server."""
    from dw_pipelines.sync.files.runner import sync_files
    from dw_pipelines.sync.files.spec import CsvOptions, FileStreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    spec.setdefault("name", "events")
    if isinstance(spec.get("csv"), dict):
        spec["csv"] = CsvOptions(**spec["csv"])  # type: ignore[arg-type]
    warehouse = open_warehouse(warehouse_url)
    try:
        with s3_resource(local_s3).open() as store:
            return sync_files(
                FileStreamSpec(source="drops", bucket=bucket, **spec),  # type: ignore[arg-type]
                store,
                warehouse,
                partition=partition,
                max_files=max_files,
                keys=keys,
            )
    finally:
        warehouse.close()


def kill_child_at(
    module_args: list[str], marker: str, occurrence: int, after: str | None = None
) -> None:
    """Run `python -m <module_args>`, have it stop for good at its `occurrence`-th line starting
    with `marker` (counted from its first `after` line, if given), SIGKILL it there, and check
    that this is the phase it was killed in; fail if it finishes first."""
    import os
    import signal
    import subprocess
    import sys

    from dw_pipelines_tests._sync_child import STOP_AT, stop_spec

    child = subprocess.Popen(
        [sys.executable, "-m", *module_args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, STOP_AT: stop_spec(marker, occurrence, after)},
    )
    assert child.stdout is not None
    stopped = None
    for line in child.stdout:
        if line.startswith("stopped at "):
            stopped = line.strip()
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert stopped == f"stopped at {marker} #{occurrence}", (
        f"the run finished before reaching {marker!r} #{occurrence}"
    )
    assert child.returncode == -signal.SIGKILL
