"""What one sync of one stream did, whatever kind of stream it is.

A single type so that the Dagster layer has one function turning it into materialization
metadata: the counts and cursors every stream reports, plus the fields only file streams
(objects loaded, quarantined) or change streams (WAL positions, snapshot) fill in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.state import CursorValue

FILES_MODE = "files"  # the mode of a file stream's results and log lines


@dataclass(frozen=True)
class Window:
    """Load `start <= cursor < end` without reading or moving the stream's live cursor."""

    start: CursorValue | str | None = None
    end: CursorValue | str | None = None

    @property
    def text(self) -> str:
        return f"[{self.start}, {self.end})"


@dataclass
class SyncResult:
    stream_id: str
    mode: str  # the sync mode, "files", "cdc" or "reconcile"
    table: str
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    row_count: int = 0
    cursor_before: CursorValue | None = None  # files: the last object; CDC: the LSN, as text
    cursor_after: CursorValue | None = None
    window: Window | None = None
    columns: list[Column] = field(default_factory=list)
    # The table's bookkeeping columns besides the data and `_dw_synced_at` (soft deletes,
    # file provenance, LSN).
    bookkeeping: list[Column] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    columns_altered: list[str] = field(default_factory=list)
    columns_dropped: list[str] = field(default_factory=list)  # evolve: kept as NULL from now on
    duration_s: float = 0.0
    # What the sync's warehouse work cost, where the warehouse bills it (`Warehouse.usage`).
    warehouse_usage: dict[str, int] = field(default_factory=dict)
    # incremental reads of sources that report open transactions (PostgreSQL): where the next
    # read starts at the latest, and how late rows are guarded ("open transactions" or why not)
    read_horizon: CursorValue | None = None
    late_row_guard: str = ""

    # file streams
    partition: str | None = None
    files_listed: int = 0
    files_loaded: int = 0
    files_replaced: int = 0
    files_quarantined: int = 0
    files_skipped: int = 0  # rewrites ignored by policy, or changed while being read
    files_pending: int = 0  # left for the next run by `max_files`
    bad_rows: int = 0
    loaded: list[str] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)

    # change streams: the key rows are matched by (declared, or the table's replica identity)
    primary_key: list[str] = field(default_factory=list)
    # change streams: positions of the source's shared slot
    replication_slot: str | None = None
    lsn_before: int = 0
    lsn_after: int = 0
    snapshot_taken: bool = False
    transactions_applied: int = 0
    slot_lag_bytes: int = 0
    slot_retained_bytes: int = 0  # WAL the server keeps for the slot (from its restart_lsn)
