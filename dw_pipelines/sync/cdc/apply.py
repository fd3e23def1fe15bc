"""Folded changes of one table applied to its warehouse table, inside the caller's transaction.

Source-agnostic: any change stream (PostgreSQL WAL, MySQL binlog) that produces TableChanges and
can turn its values into Arrow uses this. Each target row carries `_dw_lsn`, the position of the
transaction that last wrote it, and, when deletes are soft, `_dw_deleted_at`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa

from dw_pipelines.sync.cdc.changes import Pending, TableChanges
from dw_pipelines.sync.cdc.pgoutput import UNCHANGED
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.warehouses.base import DELETED_AT, Warehouse

LSN = "_dw_lsn"
OP = "_dw_op"

Converter = Callable[[Column, list[str | None]], pa.Array]


def cdc_columns(soft_deletes: bool) -> list[Column]:
    """The bookkeeping columns a CDC table has besides the data and `_dw_synced_at`."""
    extra = [Column(LSN, "int64")]
    if soft_deletes:
        extra.append(Column(DELETED_AT, "timestamptz"))
    return extra


@dataclass
class ApplyCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: ApplyCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted


def apply_changes(
    warehouse: Warehouse,
    target: str,
    stage_name: str,
    columns: Sequence[Column],
    keys: Sequence[str],
    changes: TableChanges,
    convert: Converter,
    *,
    soft_deletes: bool,
    now: datetime,
) -> ApplyCounts:
    counts = ApplyCounts()
    soft_at = now if soft_deletes else None
    if changes.truncated_lsn is not None:
        counts.deleted += warehouse.delete_all(
            target, soft_at=soft_at, stamp=[(LSN, changes.truncated_lsn)]
        )
    if not changes.rows:
        return counts

    batch, stage_columns, unresolved = _stage_batch(columns, keys, changes, convert)
    stage = warehouse.create_stage(stage_name, stage_columns)
    warehouse.load(stage, stage_columns, pa.RecordBatchReader.from_batches(batch.schema, [batch]))
    if unresolved:
        _fill_unchanged(warehouse, stage, target, columns, keys, unresolved)

    # Changes are folded to one per key, so upserted and deleted keys never overlap.
    merged = warehouse.merge_on_keys(
        target, stage, [*columns, Column(LSN, "int64")], keys, now, only=(OP, "u")
    )
    counts.updated, counts.inserted = merged.replaced, merged.new
    counts.deleted += warehouse.delete_keys(
        target, stage, keys, soft_at=soft_at, only=(OP, "d"), copy=[LSN]
    )
    warehouse.drop_stage(stage)
    return counts


def _stage_batch(
    columns: Sequence[Column], keys: Sequence[str], changes: TableChanges, convert: Converter
) -> tuple[pa.RecordBatch, list[Column], list[int]]:
    """One Arrow batch: the data columns, the op, the LSN, and, for rows whose TOASTed values
    were unchanged, the key to fill them from and a flag per such column."""
    pending = list(changes.rows.items())
    names = [c.name for c in columns]
    key_index = {names.index(k): n for n, k in enumerate(keys)}
    unresolved = sorted(
        {
            i
            for _, p in pending
            if p.fill_from is not None
            for i, v in enumerate(p.values)
            if v is UNCHANGED
        }
    )

    def value(key: tuple, p: Pending, i: int) -> str | None:
        if p.deleted:  # a delete carries only its key: other columns are never written
            return key[key_index[i]] if i in key_index else None  # type: ignore[return-value]
        v = p.values[i]
        return None if v is UNCHANGED else v  # type: ignore[return-value]

    stage_columns = list(columns) + [Column(OP, "string"), Column(LSN, "int64")]
    arrays = [convert(c, [value(k, p, i) for k, p in pending]) for i, c in enumerate(columns)]
    arrays.append(pa.array(["d" if p.deleted else "u" for _, p in pending], pa.string()))
    arrays.append(pa.array([p.lsn for _, p in pending], pa.int64()))
    if unresolved:
        for i, n in key_index.items():
            fill = [None if p.fill_from is None else p.fill_from[n] for _, p in pending]
            arrays.append(convert(columns[i], fill))  # type: ignore[arg-type]
            stage_columns.append(replace(columns[i], name=f"_dw_fill_{columns[i].name}"))
        for i in unresolved:
            flags = [p.fill_from is not None and p.values[i] is UNCHANGED for _, p in pending]
            arrays.append(pa.array(flags, pa.bool_()))
            stage_columns.append(Column(f"_dw_unchanged_{i}", "boolean"))
    schema = pa.schema(
        [pa.field(c.name, a.type) for c, a in zip(stage_columns, arrays, strict=True)]
    )
    return pa.RecordBatch.from_arrays(arrays, schema=schema), stage_columns, unresolved


def _fill_unchanged(
    warehouse: Warehouse,
    stage: str,
    target: str,
    columns: Sequence[Column],
    keys: Sequence[str],
    unresolved: list[int],
) -> None:
    """Copy unchanged TOASTed values from the row as the warehouse holds it: never NULL."""
    q = warehouse.quote
    flags = [q(f"_dw_unchanged_{i}") for i in unresolved]
    sets = ", ".join(
        f"{q(columns[i].name)} = CASE WHEN s.{flag} THEN t.{q(columns[i].name)}"
        f" ELSE s.{q(columns[i].name)} END"
        for i, flag in zip(unresolved, flags, strict=True)
    )
    clears = ", ".join(f"{flag} = false" for flag in flags)
    match = " AND ".join(f"t.{q(k)} = s.{q(f'_dw_fill_{k}')}" for k in keys)
    any_flag = " OR ".join(f"s.{flag}" for flag in flags)
    warehouse.execute(
        f"UPDATE {stage} AS s SET {sets}, {clears} FROM {target} t WHERE ({any_flag}) AND {match}"
    )
    missing = int(warehouse.scalar(f"SELECT count(*) FROM {stage} WHERE {' OR '.join(flags)}"))
    if missing:
        raise SyncError(
            f"{missing} update(s) left a large (TOASTed) value unchanged for a row the warehouse"
            " does not hold, so its value is unknown; the warehouse table is out of step with the"
            " source. Nothing was applied: re-snapshot the stream (config resnapshot: true)."
        )
