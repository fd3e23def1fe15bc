"""One load unit: one warehouse transaction holding a stream's rows, its state and its log line.

Every stream kind loads through it: the SQL engine, the file runner (one unit per object or
delivery), the CDC runner (one unit per commit interval, via `checkpoint`) and reconciliation.
Entering takes the stream's lock and reads its state under it; the caller writes rows through
the warehouse's write vocabulary and hands over the new state and a `SyncLogLine`; leaving
writes both and commits. Any exception rolls everything back, so a crash at any instant leaves
the previous commit, and the position it records, intact.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from types import TracebackType

from dw_pipelines.sync.state import StreamState, SyncLogLine
from dw_pipelines.sync.warehouses.base import Warehouse


class LoadUnit:
    """`with LoadUnit(warehouse, stream_id) as unit:` — lock, `unit.state`, rows,
    `unit.write_state(...)`, `unit.log(...)`, commit (or rollback on any exception).

    `stream_id` names the lock and the state read on entry. A unit covering several streams
    (the CDC streams of one source share a lock) reads and writes the others' states by id.
    """

    def __init__(self, warehouse: Warehouse, stream_id: str) -> None:
        self.warehouse = warehouse
        self.stream_id = stream_id
        self.state: StreamState | None = None
        self.now = datetime.now(UTC)
        self._states: dict[str, StreamState] = {}
        self._lines: list[SyncLogLine] = []

    def __enter__(self) -> LoadUnit:
        self.warehouse.begin()
        try:
            self._open()
            self.state = self.warehouse.read_state(self.stream_id)
        except BaseException:
            self._rollback()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._rollback()
            return
        try:
            self._write()
        except BaseException:
            self._rollback()
            raise
        self.warehouse.commit()

    def read_state(self, stream_id: str) -> StreamState | None:
        return self.warehouse.read_state(stream_id)

    def write_state(self, state: StreamState, stream_id: str | None = None) -> None:
        """The state to commit with the rows (the last one given per stream wins)."""
        self._states[stream_id or self.stream_id] = state

    def log(self, line: SyncLogLine) -> None:
        """A line of `_dw.sync_log` to commit with the rows it describes."""
        self._lines.append(line)

    def checkpoint(self) -> None:
        """Commit what is applied so far with its states and log lines, and go on in the next
        transaction under the same lock (long CDC runs)."""
        self._write()
        self.warehouse.commit()
        self.warehouse.begin()
        self._open()

    def _open(self) -> None:
        self.now = datetime.now(UTC)
        self.warehouse.lock_stream(self.stream_id)

    def _write(self) -> None:
        for stream_id, state in self._states.items():
            self.warehouse.write_state(stream_id, state, self.now)
        for line in self._lines:
            self.warehouse.log_sync(line, self.now)
        self._states.clear()
        self._lines.clear()

    def _rollback(self) -> None:
        # The error that got us here is the one to see, not a failing rollback's.
        with contextlib.suppress(Exception):
            self.warehouse.rollback()
