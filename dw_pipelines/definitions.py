"""The code location: everything under defs/, plus what is code-location-wide."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dw_pipelines.ingest.assets import WAREHOUSE_OP_TAG
from dw_pipelines.ingest.jobs import (
    all_streams_job,
    full_refresh_sync_job,
    incremental_sync_job,
    sync_schedules,
)
from dw_pipelines.resources.warehouse import WarehouseResource

# One process writes a DuckDB file at a time: let a run's syncs take turns instead of
# queueing on the file lock. PostgreSQL warehouses take them in parallel.
executor = dg.multiprocess_executor.configured(
    {"tag_concurrency_limits": [{"key": WAREHOUSE_OP_TAG, "value": "duckdb", "limit": 1}]}
)


@dg.definitions
def defs() -> dg.Definitions:
    location_wide = dg.Definitions(
        jobs=[all_streams_job, incremental_sync_job, full_refresh_sync_job],
        schedules=sync_schedules(),
        resources={"warehouse": WarehouseResource.from_env()},
        executor=executor,
    )
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent), location_wide
    )
