"""The demo's closing summary: each table, its rows, and what the last run did to it.

"The last run" of a table is the Dagster run of its asset's latest materialization; its figures
are the `_dw.sync_log` lines that run committed, added up. A file stream commits one line per
file or billing period, so the newest line alone would show one period, not the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from dw_pipelines.sync.warehouses.base import (
    STATE_SCHEMA,
    STATE_TABLE,
    SYNC_LOG_TABLE,
    Warehouse,
)


@dataclass(frozen=True)
class LastRun:
    mode: str
    read: int
    inserted: int
    updated: int
    deleted: int
    cursor: str


@dataclass(frozen=True)
class TableSummary:
    stream_id: str
    rows: int
    last_run: LastRun | None


def run_windows(stream_ids: list[str]) -> dict[str, tuple[datetime, datetime | None]]:
    """When the run of each stream's latest materialization started and ended (None: running)."""
    if not os.environ.get("DAGSTER_HOME"):
        return {}
    windows: dict[str, tuple[datetime, datetime | None]] = {}
    with dg.DagsterInstance.get() as instance:
        for stream_id in stream_ids:
            event = instance.get_latest_materialization_event(dg.AssetKey(stream_id.split(".")))
            record = event and instance.get_run_record_by_id(event.run_id)
            if record is None or record.start_time is None:
                continue
            end = record.end_time
            windows[stream_id] = (
                datetime.fromtimestamp(record.start_time, UTC),
                None if end is None else datetime.fromtimestamp(end, UTC),
            )
    return windows


def last_run(
    warehouse: Warehouse, stream_id: str, window: tuple[datetime, datetime | None]
) -> LastRun | None:
    """The sync_log lines the run committed between `window`'s ends, added up."""
    start, end = window
    log = warehouse.table(STATE_SCHEMA, SYNC_LOG_TABLE)
    where = "stream_id = $1 AND finished_at >= $2 AND finished_at <= $3"
    params = [stream_id, start, end or datetime.now(UTC)]
    totals = warehouse.rows(
        "SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_inserted), 0),"
        " coalesce(sum(rows_updated), 0), coalesce(sum(rows_deleted), 0)"
        f" FROM {log} WHERE {where}",
        params,
    )[0]
    if not totals[0]:
        return None
    mode, cursor = warehouse.rows(
        f"SELECT mode, cursor_after FROM {log} WHERE {where} ORDER BY finished_at DESC LIMIT 1",
        params,
    )[0]
    return LastRun(mode, *(int(n) for n in totals[1:]), cursor or "")


def tables(warehouse: Warehouse) -> list[TableSummary]:
    if not warehouse.table_exists(STATE_SCHEMA, STATE_TABLE):
        return []
    stream_ids = [
        row[0]
        for row in warehouse.rows(
            f"SELECT stream_id FROM {warehouse.table(STATE_SCHEMA, STATE_TABLE)} ORDER BY stream_id"
        )
        if "." in row[0]  # CDC keeps its source's slot position here too (`cdc:<source>`)
    ]
    windows = run_windows(stream_ids)
    summaries = []
    for stream_id in stream_ids:
        schema, name = stream_id.split(".", 1)
        count = warehouse.scalar(f"SELECT count(*) FROM {warehouse.table(schema, name)}")
        window = windows.get(stream_id)
        summaries.append(
            TableSummary(stream_id, count, window and last_run(warehouse, stream_id, window))
        )
    return summaries


def render(summaries: list[TableSummary]) -> list[str]:
    header = ("table", "rows", "last run", "read", "inserted", "updated", "deleted", "cursor")
    lines = ["  {:<26} {:>7}  {:<19} {:>6} {:>8} {:>7} {:>7}  {}".format(*header)]
    for s in summaries:
        run = s.last_run
        figures = (
            f"{run.mode:<19} {run.read:>6} {run.inserted:>8} {run.updated:>7} {run.deleted:>7}"
            f"  {run.cursor}"
            if run
            else "(no run recorded in this Dagster instance)"
        )
        lines.append(f"  {s.stream_id:<26} {s.rows:>7}  {figures}")
    return lines


def check_lines(stream_ids: list[str]) -> list[str]:
    """The asset checks the streams' latest runs evaluated: one line of totals, then each
    failure with its severity and what it named (the UI shows every check)."""
    if not os.environ.get("DAGSTER_HOME"):
        return []
    by_run: dict[str, list[dg.AssetCheckEvaluation]] = {}
    found: list[tuple[str, dg.AssetCheckEvaluation]] = []
    with dg.DagsterInstance.get() as instance:
        for stream_id in stream_ids:
            key = dg.AssetKey(stream_id.split("."))
            event = instance.get_latest_materialization_event(key)
            if event is None:
                continue
            if event.run_id not in by_run:
                records = instance.get_records_for_run(
                    event.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                ).records
                by_run[event.run_id] = [
                    r.event_log_entry.dagster_event.event_specific_data  # type: ignore[union-attr,misc]
                    for r in records
                ]
            found += [(stream_id, e) for e in by_run[event.run_id] if e.asset_key == key]
    if not found:
        return []
    passed = sum(e.passed for _, e in found)
    streams = len({s for s, _ in found})
    lines = [f"Checks on the streams: {passed} of {len(found)} passed ({streams} streams)."]
    for stream_id, e in found:
        if not e.passed:
            severity = e.severity.value.lower()
            lines.append(f"  {stream_id} {e.check_name} ({severity}): {e.description}")
    return lines
