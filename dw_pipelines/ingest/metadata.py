"""A sync result as materialization metadata and as one log line: for every kind of stream.

Every materialization records the same core keys (README, "Metadata"); file streams add their
objects and change streams their WAL positions, read from the fields of `SyncResult` they fill.
Every stream sync also writes one structured line to the run's log (`log_sync`), text or JSON.
"""

import json
from collections.abc import Callable

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.sync.cdc.apply import LSN
from dw_pipelines.sync.cdc.pgoutput import lsn_text
from dw_pipelines.sync.files.spec import SOURCE_FILE, SOURCE_MODIFIED
from dw_pipelines.sync.result import FILES_MODE, SyncResult
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.state import cursor_text
from dw_pipelines.sync.warehouses.base import DELETED_AT, SYNCED_AT

BOOKKEEPING_DESCRIPTIONS = {
    SYNCED_AT: "when the row last changed",
    DELETED_AT: "soft delete",
    LSN: "commit LSN of the last change",
    SOURCE_FILE: "the object key the row came from",
    SOURCE_MODIFIED: "that object's LastModified",
}


def result_metadata(result: SyncResult) -> dict[str, object]:
    """The materialization metadata of one stream's sync."""
    columns = [
        dg.TableColumn(
            c.name, c.type_label, constraints=dg.TableColumnConstraints(nullable=c.nullable)
        )
        for c in result.columns
    ]
    columns += [
        dg.TableColumn(c.name, c.type_label, description=BOOKKEEPING_DESCRIPTIONS.get(c.name))
        for c in [Column(SYNCED_AT, "timestamptz"), *result.bookkeeping]
    ]
    metadata: dict[str, object] = {
        "dagster/row_count": result.row_count,
        "dagster/column_schema": dg.TableSchema(columns=columns),
        "dagster/table_name": f"{settings.warehouse_catalog()}.{result.table}",
        "sync_mode": result.mode,
        **_counts_and_positions(result),
    }
    # Only where the warehouse bills its work (BigQuery: `bigquery_bytes_processed`, ...).
    metadata.update(result.warehouse_usage)
    if result.late_row_guard:
        metadata["late_row_guard"] = result.late_row_guard
        metadata["read_horizon"] = cursor_text(result.read_horizon)
    if result.columns_added:
        metadata["columns_added"] = ", ".join(result.columns_added)
    if result.columns_altered:
        metadata["columns_altered"] = ", ".join(result.columns_altered)
    if result.columns_dropped:
        metadata["columns_dropped"] = ", ".join(result.columns_dropped)
    if result.mode == FILES_MODE:
        metadata.update(_files_metadata(result))
    if result.replication_slot is not None:
        metadata.update(
            {
                "lsn_before": lsn_text(result.lsn_before),
                "lsn_after": lsn_text(result.lsn_after or result.lsn_before),
                "snapshot_taken": result.snapshot_taken,
                "transactions_applied": result.transactions_applied,
                "slot_lag_bytes": result.slot_lag_bytes,
                "slot_retained_wal_bytes": result.slot_retained_bytes,
                "replication_slot": result.replication_slot,
            }
        )
    return metadata


def _counts_and_positions(result: SyncResult) -> dict[str, object]:
    """What the metadata and the log line both report: the counts, the cursor, the window."""
    fields: dict[str, object] = {
        "rows_read": result.rows_read,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_unchanged": result.rows_unchanged,
        "rows_deleted": result.rows_deleted,
        "cursor_before": cursor_text(result.cursor_before),
        "cursor_after": cursor_text(result.cursor_after),
        "duration_s": result.duration_s,
    }
    if result.window is not None:
        fields["window"] = result.window.text
    if result.partition:
        fields["partition"] = result.partition
    return fields


def _files_metadata(result: SyncResult) -> dict[str, object]:
    metadata: dict[str, object] = {
        "files_listed": result.files_listed,
        "files_loaded": result.files_loaded,
        "files_replaced": result.files_replaced,
        "files_quarantined": result.files_quarantined,
        "files_skipped": result.files_skipped,
        "files_pending": result.files_pending,
        "bad_rows": result.bad_rows,
        "loaded_files": dg.MetadataValue.md(bullets(result.loaded)),
    }
    if result.quarantined:
        metadata["quarantined_files"] = dg.MetadataValue.md(
            bullets([f"`{k}`: {e}" for k, e in result.quarantined])
        )
    return metadata


def bullets(lines: list[str], limit: int = 20) -> str:
    shown = [f"- {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"- … and {len(lines) - limit} more")
    return "\n".join(shown) or "(none)"


SYNC_LOG_EVENT = "stream_sync"  # the `event` of every JSON sync line, to filter logs on


def sync_summary(result: SyncResult) -> dict[str, object]:
    """What one stream's sync did, as flat JSON-able fields: counts, positions, timing.

    Never object keys, URLs or error text: names, numbers and cursor values only."""
    summary: dict[str, object] = {
        "event": SYNC_LOG_EVENT,
        "stream": result.stream_id,
        "table": result.table,
        "mode": result.mode,
        "row_count": result.row_count,
        **_counts_and_positions(result),
    }
    if result.mode == FILES_MODE:
        summary.update(
            files_loaded=result.files_loaded,
            files_quarantined=result.files_quarantined,
            files_pending=result.files_pending,
            bad_rows=result.bad_rows,
        )
    if result.replication_slot is not None:
        summary.update(
            snapshot_taken=result.snapshot_taken,
            transactions_applied=result.transactions_applied,
            slot_lag_bytes=result.slot_lag_bytes,
            slot_retained_wal_bytes=result.slot_retained_bytes,
        )
    return summary


def sync_log_line(result: SyncResult, log_format: str = "text") -> str:
    """`json`: one JSON object; `text`: `stream … synced:` then `key=value` pairs (logfmt)."""
    summary = sync_summary(result)
    if log_format == "json":
        return json.dumps(summary, default=str, separators=(",", ":"))
    pairs = " ".join(
        f"{k}={_logfmt(v)}" for k, v in summary.items() if k not in ("event", "stream")
    )
    return f"stream {result.stream_id} synced: {pairs}"


def log_sync(log: Callable[[str], None], result: SyncResult) -> None:
    """The one place a stream sync's summary line is written (SQL, files, CDC, Salesforce)."""
    log(sync_log_line(result, settings.log_format()))


def _logfmt(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=') else text
