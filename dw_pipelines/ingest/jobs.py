"""The sync jobs and schedules a data engineer sees by name and switches on in the UI."""

from __future__ import annotations

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.assets import SYNC_MODE_TAG
from dw_pipelines.ingest.partitions import PARTITIONED_TAG

# A job's assets must share one partitions definition, so the location-wide jobs leave out
# partitioned streams (each has a job of its own, `<source>_<name>_job`): two streams
# partitioned differently would otherwise stop the code location from loading.
partitioned = dg.AssetSelection.tag(PARTITIONED_TAG, "true")
incremental_selection = (
    dg.AssetSelection.tag(SYNC_MODE_TAG, "incremental_merge")
    | dg.AssetSelection.tag(SYNC_MODE_TAG, "incremental_append")
) - partitioned
full_refresh_selection = dg.AssetSelection.tag(SYNC_MODE_TAG, "full_refresh")

all_streams_job = dg.define_asset_job(
    "all_streams_job",
    selection=dg.AssetSelection.all() - partitioned,
    description="Every asset of the code location but the partitioned streams (each has its"
    " own job): what `make demo` runs.",
)
incremental_sync_job = dg.define_asset_job(
    "incremental_sync_job",
    selection=incremental_selection,
    description="Every incremental stream (append and merge), from where each left off.",
)
full_refresh_sync_job = dg.define_asset_job(
    "full_refresh_sync_job",
    selection=full_refresh_selection,
    description="Every full-refresh stream, each table replaced atomically.",
)


def sync_schedules() -> list[dg.ScheduleDefinition]:
    """Schedules start stopped; crons come from DW_INCREMENTAL_CRON / DW_FULL_REFRESH_CRON."""
    return [
        _stopped_schedule("incremental_sync_schedule", incremental_sync_job.name, settings.incremental_cron()),
        _stopped_schedule("full_refresh_sync_schedule", full_refresh_sync_job.name, settings.full_refresh_cron()),
    ]  # fmt: skip


def _stopped_schedule(name: str, job_name: str, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=name,
        job_name=job_name,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
