"""Time partitions of a SQL or API stream: each partition is a window of its cursor column.

A partitioned stream is still one table and one live cursor. A run of one partition, or of a
range of them in a single run, is a window backfill (`start <= cursor < end`): it loads exactly
that window in one load unit and leaves the live cursor where it was. A run without a partition
(the stream's own job, its schedule) is the ordinary incremental sync from the live cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from dw_pipelines.sync.result import Window
from dw_pipelines.sync.spec import DeclarationError

PARTITIONED_TAG = "dw/partitioned"
"""Tags every partitioned asset: the location-wide jobs leave them out (see `ingest/jobs.py`)."""

_PERIODS: dict[str, type[dg.TimeWindowPartitionsDefinition]] = {
    "hourly": dg.HourlyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
    "monthly": dg.MonthlyPartitionsDefinition,
}


def parse_start(sid: str, period: str, start: str) -> datetime:
    """The first partition's start, or a DeclarationError naming `partitions.start`."""
    try:
        value = datetime.fromisoformat(start)
    except ValueError:
        value = None
    if value is None or value.tzinfo is not None:
        raise DeclarationError(
            sid,
            "partitions.start",
            f"'{start}' is not a date like '2026-01-01' (or '2026-01-01T06:00' for hourly), in UTC",
        )
    if period != "hourly" and value.time() != datetime.min.time():
        raise DeclarationError(
            sid, "partitions.start", f"{period} partitions start at midnight: give a date"
        )
    if period == "monthly" and value.day != 1:
        raise DeclarationError(
            sid, "partitions.start", "monthly partitions start on the first day of a month"
        )
    return value.replace(tzinfo=UTC)


def time_partitions(sid: str, period: str, start: str) -> dg.TimeWindowPartitionsDefinition:
    # end_offset 0: the newest partition is the last complete period; the one still filling
    # (today) is the live sync's, so a partition marked materialized holds its whole window.
    return _PERIODS[period](start_date=parse_start(sid, period, start), timezone="UTC")


def partition_window(context: dg.AssetExecutionContext) -> Window | None:
    """The cursor window of the run's partition (or partition range), None when unpartitioned.

    Bounds are UTC wall-clock text without an offset: a `timestamptz` cursor reads them as UTC,
    a `timestamp` cursor as written, a `date` cursor takes the day (see `sync/engine.py`)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window

    def text(moment: datetime) -> str:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat()

    return Window(text(window.start), text(window.end))
