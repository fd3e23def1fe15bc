"""Row changes of one table folded to their net effect, in commit order, before they are applied.

Within a batch only the last state of each key matters: an insert then three updates is one
upsert, an insert then a delete is a delete of a key the warehouse never saw. Folding keeps the
warehouse work proportional to the keys touched, and makes applying a batch one set-based
statement per kind instead of one per change. Memory is bounded by the caller flushing a batch
once it holds `len(table)` keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from dw_pipelines.sync.cdc.pgoutput import UNCHANGED, Value

Key = tuple[Value, ...]


@dataclass
class Pending:
    deleted: bool
    values: list[Value]  # in the stream's column order; UNCHANGED where the row keeps its value
    lsn: int  # commit LSN of the transaction that made the change
    # The key of the row, as the warehouse holds it before this batch, whose values fill the
    # UNCHANGED columns (the old key when the key itself changed).
    fill_from: Key | None = None


class TableChanges:
    """The net changes to one table since the last flush."""

    def __init__(self, key_positions: list[int]) -> None:
        self.key_positions = key_positions
        self.rows: dict[Key, Pending] = {}
        self.truncated_lsn: int | None = None
        self.changes = 0  # source changes folded in, for metadata

    def __len__(self) -> int:
        return len(self.rows)

    def key(self, values: list[Value]) -> Key:
        return tuple(values[i] for i in self.key_positions)

    def upsert(self, values: list[Value], lsn: int, old_key: Key | None = None) -> None:
        """An insert, or an update (`old_key` set when the update changed the key)."""
        self.changes += 1
        key = self.key(values)
        source_key = old_key if old_key is not None else key
        prior = self.rows.get(source_key)
        if old_key is not None and old_key != key:
            # The row moved: its old key is gone, whether or not the warehouse has it yet.
            self.rows[old_key] = Pending(True, [], lsn)
        fill_from = None
        if UNCHANGED in values:
            if prior is not None and not prior.deleted:
                values = [
                    p if v is UNCHANGED else v for v, p in zip(values, prior.values, strict=True)
                ]
                fill_from = prior.fill_from
            else:
                fill_from = source_key
            if UNCHANGED not in values:
                fill_from = None
        self.rows.pop(key, None)  # re-insert at the end: dict order stays change order
        self.rows[key] = Pending(False, values, lsn, fill_from)

    def delete(self, key: Key, lsn: int) -> None:
        self.changes += 1
        self.rows.pop(key, None)
        self.rows[key] = Pending(True, [], lsn)

    def truncate(self, lsn: int) -> None:
        """Everything before is void: the warehouse table is emptied first when applied."""
        self.changes += 1
        self.rows.clear()
        self.truncated_lsn = lsn

    def clear(self) -> None:
        self.rows.clear()
        self.truncated_lsn = None
