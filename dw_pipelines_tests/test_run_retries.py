"""The production instance retries a run that failed for a passing reason, never one that met bad
data: Dagster records its decision on the failed run (tag `dagster/will_retry`), and the daemon
re-executes exactly the runs so tagged."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.ingest.jobs import all_streams_job
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines_tests.conftest import run_sql
from dw_pipelines_tests.deploy import production_instance

CATALOG = """
sources:
  shop: {type: postgres, url_env: T_SHOP_URL}
streams:
  - {source: shop, object: orders, mode: incremental_append, cursor: updated_at}
"""


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """docker/dagster.yaml itself, on a throwaway PostgreSQL database."""
    with production_instance() as instance:
        yield instance


def sync_run(instance: dg.DagsterInstance, warehouse_url: str) -> dg.DagsterRun:
    catalog = StreamCatalog.resolve_from_yaml(CATALOG).build_defs(None)  # type: ignore[arg-type]
    defs = dg.Definitions.merge(
        catalog,
        dg.Definitions(
            jobs=[all_streams_job],
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
        ),
    )
    result = defs.resolve_job_def("all_streams_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    return run


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_failed_by_an_unreachable_source_is_retried(
    instance, duckdb_warehouse_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_SHOP_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/shop")
    run = sync_run(instance, duckdb_warehouse_url)
    assert run.tags.get("dw/transient_failure") == "SourceUnreachable"
    assert run.tags.get("dagster/will_retry") == "true"


def test_run_failed_by_bad_data_is_not_retried(
    instance, pg_source_url, duckdb_warehouse_url, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz)",
        "INSERT INTO orders VALUES (1, now()), (2, NULL)",  # a NULL cursor: CursorNullError
    )
    monkeypatch.setenv("T_SHOP_URL", pg_source_url)
    run = sync_run(instance, duckdb_warehouse_url)
    assert "dw/transient_failure" not in run.tags
    assert run.tags.get("dagster/will_retry") == "false"
