"""The sync engine: one stream, one warehouse transaction, exactly once.

Every sync is one load unit (`LoadUnit`, one warehouse transaction): rows are streamed from the
source into a scratch table (or, for a full refresh, into the replacement table), applied to the
target through the warehouse's write vocabulary, and the stream's state and log line commit
with them. A crash at any instant leaves the previous commit intact, and
a rerun starts again from the state that commit recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dw_pipelines.sync.errors import (
    CursorNullError,
    DuplicateKeyError,
    SchemaDriftError,
    SyncError,
    with_context,
)
from dw_pipelines.sync.load_unit import LoadUnit
from dw_pipelines.sync.result import SyncResult, Window
from dw_pipelines.sync.schema import Column, fingerprint
from dw_pipelines.sync.sources.base import ReadRequest, Source
from dw_pipelines.sync.spec import SchemaPolicy, StreamSpec, SyncMode, parse_duration
from dw_pipelines.sync.state import (
    CursorPosition,
    CursorValue,
    StreamState,
    SyncLogLine,
    cursor_position,
    cursor_text,
    parse_cursor_text,
    subtract_lookback,
)
from dw_pipelines.sync.warehouses.base import DELETED_AT, Warehouse

CURSOR_TYPES = {"int16", "int32", "int64", "decimal", "date", "timestamp", "timestamptz", "string"}


@dataclass
class SchemaPlan:
    target: list[Column]  # the warehouse table's data columns after this sync
    added: list[Column]
    altered: list[Column]
    # Columns the source no longer has that the table keeps (evolve): all of them, and those
    # the previous sync still read.
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def sync_stream(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    *,
    window: Window | None = None,
    log: Callable[[str], None] | None = None,
) -> SyncResult:
    """Sync one stream; raise SyncError (having advanced nothing) when it cannot.

    Sources that declare it (`Source.abilities`) name the cursor an incremental stream uses
    when it declares none, and report the keys of rows deleted with the cursor in range, which
    incremental_merge applies (hard or soft, per `spec.deletes`) in the same transaction as the
    upserts and the cursor.
    """
    spec = with_default_cursor(spec, source)
    spec.validate()
    if spec.mode is SyncMode.CDC:
        raise SyncError(f"stream '{spec.stream_id}': mode cdc streams are synced per source by CDC")
    started = time.monotonic()
    say = log or (lambda _msg: None)
    if window is not None and not spec.mode.incremental:
        raise SyncError(f"stream '{spec.stream_id}': a window needs an incremental mode")

    columns = select_columns(spec, source.describe(spec.object))
    cursor_col = _cursor_column(spec, columns)
    if cursor_col is not None and cursor_col.nullable:
        nulls = source.count_nulls(spec.object, cursor_col.name)
        if nulls:
            raise CursorNullError(
                f"stream '{spec.stream_id}': {nulls} row(s) of '{spec.object}' have NULL in the"
                f" cursor column '{cursor_col.name}'; an incremental sync would never read them."
                " Fill the column, choose a NOT NULL cursor, or use mode full_refresh."
            )
    bounds = _window_bounds(window, cursor_col)

    usage_before = warehouse.usage()
    prepare_warehouse(warehouse, spec.source)
    try:
        result = _sync_in_transaction(spec, source, warehouse, columns, bounds, window, say)
    except SyncError as exc:
        if spec.stream_id not in str(exc):
            with_context(exc, f"stream '{spec.stream_id}'")
        raise
    result.duration_s = round(time.monotonic() - started, 3)
    result.warehouse_usage = usage_since(usage_before, warehouse.usage())
    return result


def usage_since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The warehouse's counters (`Warehouse.usage`) for the work between the two readings."""
    return {key: value - before.get(key, 0) for key, value in after.items()}


def with_default_cursor(spec: StreamSpec, source: Source) -> StreamSpec:
    """The spec with the source's default cursor when an incremental stream names none."""
    if spec.mode.incremental and not spec.cursor and source.abilities.default_cursor:
        return replace(spec, cursor=source.default_cursor(spec.object))  # type: ignore[attr-defined]
    return spec


def _sync_in_transaction(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    columns: list[Column],
    bounds: tuple[CursorValue | None, CursorValue | None] | None,
    window: Window | None,
    say: Callable[[str], None],
) -> SyncResult:
    target = warehouse.table(spec.source, spec.name)
    result = SyncResult(
        spec.stream_id, spec.mode.value, f"{spec.source}.{spec.name}", window=window
    )
    if spec.deletes == "soft" and spec.mode is SyncMode.INCREMENTAL_MERGE:
        result.bookkeeping = [Column(DELETED_AT, "timestamptz")]
    with LoadUnit(warehouse, spec.stream_id) as unit:
        now = unit.now
        exists = warehouse.table_exists(spec.source, spec.name)
        state = unit.state if exists else None
        known = list(state.columns) if state and state.columns else None
        plan = plan_schema(spec, columns, known, state.kept_columns if state else ())
        result.cursor_before = state.cursor if state else None

        if spec.mode is SyncMode.FULL_REFRESH:
            cursor_after = _full_refresh(spec, source, warehouse, columns, target, now, result)
        else:
            prior = state.position if state else None
            horizon = prior.horizon if isinstance(prior, CursorPosition) else None
            if bounds is None:
                lower = _lower_bound(spec, state.cursor if state else None)
                if lower is not None and horizon is not None:
                    lower = min(lower, horizon)  # type: ignore[type-var]
                horizon = _read_horizon(spec, source, _cursor_column(spec, columns), result)
                upper = None
            else:
                lower, upper = bounds
            result.read_horizon = horizon  # a window leaves the live position as it was
            say(f"{spec.stream_id}: reading {_range_text(spec.cursor or '', lower, upper)}")
            cursor_after = _incremental(
                spec, source, warehouse, columns, plan, target, exists, lower, upper, now, result
            )
            if bounds is not None or result.rows_read == 0:
                cursor_after = result.cursor_before
            elif result.cursor_before is not None and cursor_after is not None:
                cursor_after = max(cursor_after, result.cursor_before)  # type: ignore[type-var]
            if state is not None:
                result.row_count = state.row_count + result.rows_inserted
                if spec.deletes == "hard":
                    result.row_count -= result.rows_deleted
            else:
                result.row_count = warehouse.row_count(target)

        result.cursor_after = cursor_after
        result.columns = plan.target
        result.columns_added = [c.name for c in plan.added]
        result.columns_altered = [c.name for c in plan.altered]
        result.columns_dropped = list(plan.dropped)
        unit.write_state(
            StreamState(
                position=cursor_position(cursor_after, result.read_horizon),
                columns=tuple(plan.target),
                schema_fingerprint=fingerprint(plan.target),
                row_count=result.row_count,
                kept_columns=tuple(plan.kept),
            )
        )
        unit.log(log_line(result))
    return result


def log_line(result: SyncResult) -> SyncLogLine:
    """The `_dw.sync_log` line recording a result."""
    return SyncLogLine(
        result.stream_id,
        result.mode,
        rows_read=result.rows_read,
        rows_inserted=result.rows_inserted,
        rows_updated=result.rows_updated,
        rows_unchanged=result.rows_unchanged,
        rows_deleted=result.rows_deleted,
        row_count=result.row_count,
        cursor_before=cursor_text(result.cursor_before),
        cursor_after=cursor_text(result.cursor_after),
        window_text=result.window.text if result.window is not None else result.partition,
    )


def reconcile_stream(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    *,
    log: Callable[[str], None] | None = None,
) -> SyncResult:
    """Compare every key the source holds with the warehouse table's, and delete (or, with soft
    deletes, mark) the rows whose key the source no longer has: records purged without a trace
    an incremental sync could see. Needs a source with `all_keys(request)`; one transaction."""
    spec = with_default_cursor(spec, source)
    spec.validate()
    if not source.abilities.lists_all_keys or not spec.primary_key:
        raise SyncError(
            f"stream '{spec.stream_id}': reconciliation needs a primary key and a source that"
            " lists every key"
        )
    started = time.monotonic()
    say = log or (lambda _msg: None)
    by_name = {c.name: c for c in source.describe(spec.object)}
    keys = [by_name[k] for k in spec.primary_key]
    target = warehouse.table(spec.source, spec.name)
    result = SyncResult(spec.stream_id, "reconcile", f"{spec.source}.{spec.name}")
    usage_before = warehouse.usage()
    prepare_warehouse(warehouse, spec.source)
    with LoadUnit(warehouse, spec.stream_id) as unit:
        state = unit.state
        if state is None or not warehouse.table_exists(spec.source, spec.name):
            raise SyncError(f"stream '{spec.stream_id}': nothing to reconcile before a first sync")
        reader = source.all_keys(ReadRequest(spec.object, tuple(keys)))  # type: ignore[attr-defined]
        stage = warehouse.create_stage(warehouse.stage_name(spec.stream_id), keys)
        result.rows_read = warehouse.load(stage, keys, reader)
        if result.rows_read == 0 and warehouse.row_count(target):
            # An empty listing is far likelier a lost permission than an emptied object.
            raise SyncError(
                f"stream '{spec.stream_id}': the source listed no key at all; reconciliation"
                " refuses to delete every row (check the user's access to the object)"
            )
        soft = spec.deletes == "soft" and warehouse.column_exists(
            spec.source, spec.name, DELETED_AT
        )
        result.rows_deleted = warehouse.delete_keys(
            target, stage, spec.primary_key, soft_at=unit.now if soft else None, absent=True
        )
        warehouse.drop_stage(stage)
        result.row_count = warehouse.row_count(target)
        result.cursor_before = result.cursor_after = state.cursor
        result.columns = list(state.columns)
        unit.write_state(replace(state, row_count=result.row_count))
        unit.log(log_line(result))
    say(f"{spec.stream_id}: {result.rows_read} source keys, {result.rows_deleted} purged rows")
    result.duration_s = round(time.monotonic() - started, 3)
    result.warehouse_usage = usage_since(usage_before, warehouse.usage())
    return result


def prepare_warehouse(warehouse: Warehouse, schema: str) -> None:
    """Create the state tables and the stream's schema in their own short transaction, so that
    syncs starting together on a fresh PostgreSQL warehouse do not race on the DDL."""
    for attempt in (1, 2):
        try:
            with warehouse.transaction():
                warehouse.ensure_state_table()
                warehouse.ensure_schema(schema)
            return
        except SyncError:
            raise
        except Exception:
            if attempt == 2:
                raise


# -- modes ------------------------------------------------------------------------------------


def _full_refresh(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    columns: list[Column],
    target: str,
    now: datetime,
    result: SyncResult,
) -> CursorValue | None:
    # Build the replacement beside the live table and swap in the same transaction:
    # readers see the old table until the commit, then the new one, never a half-load.
    new_name = f"{spec.name}__dw_new"
    new_table = warehouse.table(spec.source, new_name)
    warehouse.execute(f"DROP TABLE IF EXISTS {new_table}")
    warehouse.create_table(new_table, columns, spec.table_layout)
    reader = source.read(
        ReadRequest(
            spec.object,
            tuple(columns),
            tolerate_missing_columns=spec.schema_policy is SchemaPolicy.EVOLVE,
        )
    )
    result.rows_read = result.rows_inserted = warehouse.load(new_table, columns, reader, now)
    if spec.primary_key:
        _check_keys(spec, warehouse, new_table)
    warehouse.swap_in(spec.source, new_name, spec.name)
    result.row_count = result.rows_read
    if spec.cursor is None:
        return None
    return _coerce_cursor(warehouse.max_value(target, spec.cursor), _cursor_column(spec, columns))


def _incremental(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    columns: list[Column],
    plan: SchemaPlan,
    target: str,
    exists: bool,
    lower: CursorValue | None,
    upper: CursorValue | None,
    now: datetime,
    result: SyncResult,
) -> CursorValue | None:
    if not exists:
        warehouse.create_table(target, plan.target, spec.table_layout)
    deletes = _reports_deletes(spec, source)
    soft = deletes and spec.deletes == "soft"
    if soft and not warehouse.column_exists(spec.source, spec.name, DELETED_AT):
        warehouse.add_column(target, Column(DELETED_AT, "timestamptz"))
    if spec.mode is SyncMode.INCREMENTAL_MERGE:
        warehouse.index_keys(spec.source, spec.name, spec.primary_key)
    else:
        warehouse.index_keys(spec.source, spec.name, [spec.cursor or "", *spec.primary_key])
    for column in plan.added:
        warehouse.add_column(target, column)
    for column in plan.altered:
        warehouse.alter_column_type(target, column)

    request = ReadRequest(
        spec.object,
        tuple(columns),
        spec.cursor,
        lower,
        upper,
        tolerate_missing_columns=spec.schema_policy is SchemaPolicy.EVOLVE,
    )
    if not exists:
        # A first load has nothing to merge with: stream straight into the new table.
        result.rows_read = result.rows_inserted = warehouse.load(
            target, columns, source.read(request), now
        )
        if spec.mode is SyncMode.INCREMENTAL_MERGE:
            _check_keys(spec, warehouse, target)
        return _coerce_cursor(
            warehouse.max_value(target, spec.cursor or ""), _cursor_column(spec, columns)
        )

    stage = warehouse.create_stage(warehouse.stage_name(spec.stream_id), columns)
    result.rows_read = warehouse.load(stage, columns, source.read(request))
    cursor_after = _coerce_cursor(
        warehouse.max_value(stage, spec.cursor or ""), _cursor_column(spec, columns)
    )
    if spec.mode is SyncMode.INCREMENTAL_MERGE:
        _check_keys(spec, warehouse, stage)
        # Rows re-read by the lookback that did not change are left alone, so _dw_synced_at
        # keeps meaning "last changed" and unchanged rows cost no write.
        merged = warehouse.merge_on_keys(
            target,
            stage,
            columns,
            spec.primary_key,
            now,
            skip_unchanged=True,
            live_column=DELETED_AT if soft else None,
        )
        result.rows_unchanged, result.rows_updated = merged.skipped, merged.replaced
        result.rows_inserted = merged.new
        if deletes:
            result.rows_deleted = _apply_deletes(spec, source, warehouse, columns, request, now)
    else:
        # Append skips rows it already holds: same key and cursor when a key is declared,
        # otherwise the same whole row, so the lookback never duplicates anything.
        rest = spec.primary_key or [c.name for c in columns if c.name != spec.cursor]
        result.rows_inserted = warehouse.append_missing(
            target, stage, columns, now, equal=[spec.cursor or ""], null_safe=rest
        )
        result.rows_unchanged = result.rows_read - result.rows_inserted
    warehouse.drop_stage(stage)
    return cursor_after


def _reports_deletes(spec: StreamSpec, source: Source) -> bool:
    if spec.mode is not SyncMode.INCREMENTAL_MERGE:
        return False
    if source.abilities.reports_deletes:
        return True
    if spec.deletes == "soft":
        raise SyncError(
            f"stream '{spec.stream_id}': field 'deletes': soft deletes need a source that reports"
            f" deletes; '{spec.source}' does not (use mode full_refresh to drop deleted rows)"
        )
    return False


def _apply_deletes(
    spec: StreamSpec,
    source: Source,
    warehouse: Warehouse,
    columns: list[Column],
    request: ReadRequest,
    now: datetime,
) -> int:
    """Remove (or mark) the rows the source reports deleted in the request's cursor range."""
    by_name = {c.name: c for c in columns}
    keys = [by_name[k] for k in spec.primary_key]
    reader = source.deleted_keys(replace(request, columns=tuple(keys)))  # type: ignore[attr-defined]
    stage = warehouse.create_stage(warehouse.stage_name(spec.stream_id), keys)
    if not warehouse.load(stage, keys, reader):
        warehouse.drop_stage(stage)
        return 0
    target = warehouse.table(spec.source, spec.name)
    soft_at = now if spec.deletes == "soft" else None
    deleted = warehouse.delete_keys(target, stage, spec.primary_key, soft_at=soft_at)
    warehouse.drop_stage(stage)
    return deleted


def _check_keys(spec: StreamSpec, warehouse: Warehouse, table: str) -> None:
    nulls = warehouse.null_keys(table, spec.primary_key)
    if nulls:
        raise DuplicateKeyError(
            f"stream '{spec.stream_id}': {nulls} source row(s) have a NULL primary key"
            f" ({', '.join(spec.primary_key)}); nothing was loaded"
        )
    dupes = warehouse.duplicate_keys(table, spec.primary_key).examples
    if dupes:
        examples = "; ".join(
            ", ".join(f"{k}={v!r}" for k, v in zip(spec.primary_key, key, strict=True))
            + f" ({n} rows)"
            for key, n in dupes
        )
        raise DuplicateKeyError(
            f"stream '{spec.stream_id}': the source delivered duplicate primary keys"
            f" ({', '.join(spec.primary_key)}), e.g. {examples}. The declared primary key is"
            " not unique in the source; nothing was loaded."
        )


# -- columns and cursor ---------------------------------------------------------------------


def select_columns(spec: StreamSpec, described: list[Column]) -> list[Column]:
    by_name = {c.name: c for c in described}
    wanted = (
        list(spec.columns)
        if spec.columns is not None
        else [c.name for c in described if c.name not in spec.exclude_columns]
    )
    for field_name, names in (
        ("columns", wanted),
        ("primary_key", spec.primary_key),
        ("cursor", [spec.cursor] if spec.cursor else []),
    ):
        for name in names:
            if name not in by_name:
                raise SchemaDriftError(
                    f"stream '{spec.stream_id}': field '{field_name}': column '{name}' does not"
                    f" exist in source table '{spec.object}'"
                    f" (it has: {', '.join(by_name) or 'no columns'})"
                )
    return [by_name[n] for n in wanted]


def _cursor_column(spec: StreamSpec, columns: Sequence[Column]) -> Column | None:
    if not spec.cursor:
        return None
    column = next(c for c in columns if c.name == spec.cursor)
    if column.type not in CURSOR_TYPES:
        raise SyncError(
            f"stream '{spec.stream_id}': field 'cursor': column '{column.name}' is"
            f" {column.type_label}; a cursor must be an integer, decimal, date, timestamp or text"
        )
    return column


def _range_text(cursor: str, lower: CursorValue | None, upper: CursorValue | None) -> str:
    parts = [f"{cursor} >= {cursor_text(lower)}" if lower is not None else ""]
    parts.append(f"{cursor} < {cursor_text(upper)}" if upper is not None else "")
    return " and ".join(p for p in parts if p) or "all rows (no cursor yet)"


def _read_horizon(
    spec: StreamSpec, source: Source, cursor: Column | None, result: SyncResult
) -> CursorValue | None:
    """Where the next read must start at the latest, asked of the source before this read
    begins; `result.late_row_guard` says whether open transactions or the lookback alone guard
    against rows committed late."""
    if cursor is None or cursor.type not in ("timestamp", "timestamptz"):
        result.late_row_guard = "lookback only: the cursor is not a timestamp"
        return None
    if not source.abilities.read_horizon:
        result.late_row_guard = "lookback only: the source does not report open transactions"
        return None
    horizon = source.read_horizon()  # type: ignore[attr-defined]
    if horizon.at is None:
        result.late_row_guard = f"lookback only: {horizon.reason}"
        return None
    result.late_row_guard = "open transactions"
    if cursor.type == "timestamptz":
        return horizon.at
    return horizon.local_at


def _lower_bound(spec: StreamSpec, cursor: CursorValue | None) -> CursorValue | None:
    if cursor is None:
        return None
    lookback: int | timedelta | None = None
    if isinstance(spec.lookback, int) and isinstance(cursor, datetime | date):
        lookback = timedelta(seconds=spec.lookback)
    elif isinstance(spec.lookback, int):
        lookback = spec.lookback
    elif spec.lookback:
        lookback = parse_duration(spec.lookback)
    try:
        return subtract_lookback(cursor, lookback)
    except TypeError as exc:
        raise SyncError(f"stream '{spec.stream_id}': field 'lookback': {exc}") from None


def _window_bounds(
    window: Window | None, cursor: Column | None
) -> tuple[CursorValue | None, CursorValue | None] | None:
    if window is None or cursor is None:
        return None

    def typed(value: CursorValue | str | None) -> CursorValue | None:
        if not isinstance(value, str) or cursor.type == "string":
            return _coerce_cursor(value, cursor)
        try:
            if cursor.type == "date" and "T" in value:
                # A time partition's bound: a date cursor takes whole days only.
                moment = datetime.fromisoformat(value)
                if moment.time() != datetime.min.time():
                    raise ValueError("a date cursor has no hours: partition it daily or monthly")
                return moment.date()
            return parse_cursor_text(value, cursor.type)
        except (ValueError, ArithmeticError) as exc:
            raise SyncError(
                f"window bound '{value}' does not fit cursor column '{cursor.name}'"
                f" ({cursor.type_label}): {exc}"
            ) from None

    return typed(window.start), typed(window.end)


def _coerce_cursor(value: Any, column: Column | None) -> CursorValue | None:
    """Normalize what a warehouse driver returns for max(cursor) to one Python type per type."""
    if value is None or column is None:
        return value
    kind = column.type
    if kind in ("int16", "int32", "int64"):
        return int(value)
    if kind == "decimal":
        return Decimal(str(value))
    if kind == "timestamptz":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if kind == "timestamp":
        return (
            datetime.fromisoformat(value) if isinstance(value, str) else value.replace(tzinfo=None)
        )
    if kind == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    return str(value)


def plan_schema(
    spec: StreamSpec,
    source: list[Column],
    known: list[Column] | None,
    kept: Sequence[str] = (),
) -> SchemaPlan:
    """Compare the source's columns with the warehouse table's and apply the schema policy;
    `kept` are the table's columns the source had already dropped at the previous sync."""
    if known is None:
        return SchemaPlan(target=list(source), added=[], altered=[])
    known_by = {c.name: c for c in known}
    source_by = {c.name: c for c in source}
    added = [c for c in source if c.name not in known_by]
    dropped = [c for c in known if c.name not in source_by]
    altered = [
        c for c in source if c.name in known_by and c.type_label != known_by[c.name].type_label
    ]
    policy = spec.schema_policy

    def fail(what: str, remedy: str) -> SchemaDriftError:
        return SchemaDriftError(
            f"stream '{spec.stream_id}': {what} in source table '{spec.object}'."
            f" Schema policy '{policy.value}' stops here: {remedy}"
        )

    if policy is SchemaPolicy.FREEZE and added:
        names = ", ".join(f"'{c.name}' ({c.type_label})" for c in added)
        raise fail(
            f"new column {names}", "select columns explicitly or set schema_policy: add_columns"
        )
    if dropped and policy is not SchemaPolicy.EVOLVE:
        names = ", ".join(f"'{c.name}'" for c in dropped)
        raise fail(
            f"column {names} was dropped",
            "restore it, or set schema_policy: evolve to keep it in the warehouse as NULL",
        )
    if altered and policy is not SchemaPolicy.EVOLVE:
        c = altered[0]
        raise fail(
            f"column '{c.name}' changed type from {known_by[c.name].type_label} to {c.type_label}",
            "revert it, or set schema_policy: evolve to alter the warehouse column",
        )
    if spec.mode is SyncMode.FULL_REFRESH:
        # A full refresh rebuilds the table: its schema simply becomes the source's.
        return SchemaPlan(target=list(source), added=added, altered=altered)
    altered_by = {c.name: c for c in altered}
    target = [altered_by.get(c.name, c) for c in known] + added
    gone = [c.name for c in dropped]
    return SchemaPlan(target, added, altered, gone, [n for n in gone if n not in kept])
