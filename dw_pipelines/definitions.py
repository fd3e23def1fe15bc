"""The code location: everything under defs/, plus what is code-location-wide."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.alerts.sensors import alert_sensors
from dw_pipelines.dead_runs import dead_run_sensor
from dw_pipelines.ingest.jobs import (
    all_streams_job,
    full_refresh_sync_job,
    incremental_sync_job,
    sync_schedules,
)
from dw_pipelines.resources.warehouse import WarehouseResource


def executor() -> dg.ExecutorDefinition:
    """DuckDB lets one process write its file at a time, so a run's syncs take turns anyway:
    running them in the run's own process saves a process start and a code-location load per
    step. A PostgreSQL warehouse takes syncs in parallel, one process per step."""
    if settings.warehouse_kind() == "duckdb":
        return dg.in_process_executor
    return dg.multiprocess_executor


@dg.definitions
def defs() -> dg.Definitions:
    return _build(frozenset((k, v) for k, v in os.environ.items() if k != "PATH"))


# One `dagster asset materialize` or run worker rebuilds the repository from its code pointer
# several times (plan, run, each step), and each rebuild would call defs() again. What defs()
# returns depends only on the code, the YAML and the environment, so it is built once per
# environment in a process. PATH is left out of the key: the first build puts the venv's dbt on
# it, and keying on it cost every process a second build.
@functools.lru_cache(maxsize=4)
def _build(environment: frozenset[tuple[str, str]]) -> dg.Definitions:
    location_wide = dg.Definitions(
        jobs=[all_streams_job, incremental_sync_job, full_refresh_sync_job],
        schedules=sync_schedules(),
        sensors=[*alert_sensors(), dead_run_sensor()],
        resources={"warehouse": WarehouseResource.from_env()},
        executor=executor(),
    )
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent), location_wide
    )
