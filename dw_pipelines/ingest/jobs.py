"""The sync jobs and schedules a data engineer sees by name and switches on in the UI."""

from __future__ import annotations

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.assets import SYNC_MODE_TAG

incremental_selection = dg.AssetSelection.tag(SYNC_MODE_TAG, "incremental_merge") | (
    dg.AssetSelection.tag(SYNC_MODE_TAG, "incremental_append")
)
full_refresh_selection = dg.AssetSelection.tag(SYNC_MODE_TAG, "full_refresh")

all_streams_job = dg.define_asset_job(
    "all_streams_job",
    selection=dg.AssetSelection.all(),
    description="Every asset of the code location: what `make demo` runs.",
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
