"""One CDC run for one PostgreSQL source: snapshot what needs it, then apply the change stream.

Exactly once: every warehouse commit (a `LoadUnit`, checkpointed every commit interval) holds the
applied changes *and* the LSN they reach (in the `_dw.stream_state` row `cdc:<source>`), and only
after that commit is the slot told it may move.
A run killed at any instant restarts from the LSN the warehouse holds; transactions the slot
resends from before it are skipped.

No gap, no overlap at the hand-off: a table's snapshot is read in a snapshot exported by a
temporary slot at LSN L, and from the shared stream only transactions committed at or after L
are applied to that table (PostgreSQL's own rule for table synchronization).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from dw_pipelines.sync.cdc import pgoutput
from dw_pipelines.sync.cdc.apply import LSN, ApplyCounts, apply_changes, cdc_columns
from dw_pipelines.sync.cdc.changes import TableChanges
from dw_pipelines.sync.cdc.pg_replication import Keepalive, PgReplication, SlotInfo
from dw_pipelines.sync.cdc.pgoutput import Value, lsn_text
from dw_pipelines.sync.cdc.pgtext import to_arrow
from dw_pipelines.sync.engine import plan_schema, prepare_warehouse, usage_since
from dw_pipelines.sync.errors import ReplicationSlotLost, SchemaDriftError, SyncError, with_context
from dw_pipelines.sync.load_unit import LoadUnit
from dw_pipelines.sync.result import SyncResult
from dw_pipelines.sync.schema import Column, column_changes, fingerprint
from dw_pipelines.sync.sources.base import ReadRequest
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import SchemaPolicy, StreamSpec, SyncMode
from dw_pipelines.sync.state import CdcPosition, StreamState, SyncLogLine
from dw_pipelines.sync.warehouses.base import Warehouse

RESNAPSHOT_HINT = (
    "Materialize the source's CDC assets with run config `resnapshot: true` to drop and"
    " recreate the slot and copy every table again."
)


@dataclass(frozen=True)
class CdcOptions:
    slot: str | None = None  # default dw_<source>
    publication: str | None = None  # default dw_<source>
    batch_changes: int = 50_000  # folded keys held in memory before they go to the warehouse
    commit_interval_s: float = 5.0  # a warehouse commit (and slot confirmation) at least this often
    max_run_s: float = 3600.0  # a run stops at the next transaction boundary after this long
    idle_timeout_s: float = 30.0  # give up waiting for the server to report its position


@dataclass
class CdcResult:
    """One run of a source's change stream: its positions, and a `SyncResult` per stream."""

    source: str
    slot: str
    lsn_before: int = 0
    lsn_after: int = 0
    transactions: int = 0
    changes: int = 0
    snapshots: list[str] = field(default_factory=list)
    streams: dict[str, SyncResult] = field(default_factory=dict)
    slot_lag_bytes: int = 0
    slot_retained_bytes: int = 0
    duration_s: float = 0.0
    warehouse_usage: dict[str, int] = field(default_factory=dict)
    """What the warehouse billed for the whole run (`Warehouse.usage`), all streams together."""


@dataclass
class _Table:
    spec: StreamSpec
    columns: list[Column]
    keys: list[str]
    arrays: dict[str, str]
    oid: int
    type_oids: dict[str, int]
    state: StreamState | None = None
    snapshot_lsn: int = 0
    counts: ApplyCounts = field(default_factory=ApplyCounts)
    run_counts: ApplyCounts = field(default_factory=ApplyCounts)
    row_count: int = 0
    changes: TableChanges | None = None
    relation: pgoutput.Relation | None = None
    positions: list[int | None] = field(default_factory=list)  # tuple position -> column

    @property
    def soft(self) -> bool:
        return self.spec.deletes == "soft"


def state_id(source: str) -> str:
    return f"cdc:{source}"


def sync_postgres_cdc(
    source_name: str,
    specs: list[StreamSpec],
    source: SqlSource,
    warehouse: Warehouse,
    *,
    options: CdcOptions | None = None,
    resnapshot: bool = False,
    log: Callable[[str], None] | None = None,
) -> CdcResult:
    """Bring every CDC stream of one source up to the WAL position current at the start."""
    options = options or CdcOptions()
    say = log or (lambda _msg: None)
    started = time.monotonic()
    for spec in specs:
        spec.validate()
        if spec.mode is not SyncMode.CDC or spec.source != source_name:
            raise SyncError(f"stream '{spec.stream_id}' is not a cdc stream of '{source_name}'")
    repl = PgReplication(source.url, source_name, options.slot, options.publication)
    try:
        return _Run(source_name, specs, source, warehouse, repl, options, say).run(
            resnapshot, started
        )
    finally:
        repl.close()


class _Run:
    def __init__(
        self,
        source_name: str,
        specs: list[StreamSpec],
        source: SqlSource,
        warehouse: Warehouse,
        repl: PgReplication,
        options: CdcOptions,
        say: Callable[[str], None],
    ) -> None:
        self.name, self.specs, self.source, self.warehouse = source_name, specs, source, warehouse
        self.repl, self.options, self.say = repl, options, say
        source.warn = say
        self.result = CdcResult(source_name, repl.slot)
        self.tables: list[_Table] = []
        self.by_oid: dict[int, _Table | None] = {}
        self.lsn = 0  # everything before this position is in the warehouse
        self.usage_before = warehouse.usage()

    # -- setup --------------------------------------------------------------------------------

    def run(self, resnapshot: bool, started: float) -> CdcResult:
        repl = self.repl
        repl.check_ready()
        self.tables = [self._describe(spec) for spec in self.specs]
        prepare_warehouse(self.warehouse, self.name)
        with self._unit() as unit:
            source_position = unit.state.position if unit.state else None
            for table in self.tables:
                if self.warehouse.table_exists(self.name, table.spec.name):
                    table.state = unit.read_state(table.spec.stream_id)
        known_lsn = source_position.lsn if isinstance(source_position, CdcPosition) else 0
        slot = repl.slot_info()
        if known_lsn and not resnapshot:
            self._check_slot(slot, known_lsn)
        fresh = resnapshot or not known_lsn
        for table in self.tables:
            position = table.state.position if table.state else None
            table.snapshot_lsn = position.snapshot_lsn if isinstance(position, CdcPosition) else 0
            table.row_count = table.state.row_count if table.state else 0
        self._forget_positions(fresh, known_lsn)
        if fresh and slot is not None:
            say_why = "re-snapshot requested" if resnapshot else "the warehouse holds no position"
            self.say(f"{self.name}: dropping replication slot '{repl.slot}' ({say_why})")
            repl.drop_slot()
            slot = None
        added, removed = repl.sync_publication([t.spec.object for t in self.tables])
        if removed:
            self.say(f"{self.name}: no longer captured: {', '.join(removed)}")
        if slot is None:
            known_lsn = repl.create_slot()
            self.say(
                f"{self.name}: created replication slot '{repl.slot}' at {lsn_text(known_lsn)}"
            )
        self.lsn = self.result.lsn_before = known_lsn

        added_set = set(added)
        needs = [
            t
            for t in self.tables
            if fresh
            or t.state is None
            or not t.snapshot_lsn
            or PgReplication._qualified(t.spec.object) in added_set
        ]
        self._evolve_tables([t for t in self.tables if t not in needs])
        if needs:
            self._snapshot(needs)
        self._stream(started)
        self.result.lsn_after = self.lsn
        self.result.duration_s = round(time.monotonic() - started, 3)
        self.result.warehouse_usage = usage_since(self.usage_before, self.warehouse.usage())
        info = repl.slot_info()
        self.result.slot_lag_bytes = info.lag_bytes if info else 0
        self.result.slot_retained_bytes = info.retained_bytes if info else 0
        self._report_streams()
        return self.result

    def _report_streams(self) -> None:
        """Each stream's result carries the run's positions: its metadata needs nothing else."""
        run = self.result
        for table in self.tables:  # streams nothing touched still report where they stand
            stream = run.streams.setdefault(table.spec.stream_id, self._stream_result(table))
            stream.replication_slot, stream.slot_lag_bytes = run.slot, run.slot_lag_bytes
            stream.slot_retained_bytes = run.slot_retained_bytes
            stream.lsn_before, stream.lsn_after = run.lsn_before, run.lsn_after
            stream.snapshot_taken = table.spec.stream_id in run.snapshots
            stream.transactions_applied = run.transactions
            stream.duration_s = run.duration_s
            # One run applies every stream's changes in the same jobs: the cost is the run's,
            # named so, so that summing it over the streams does not count it once per stream.
            stream.warehouse_usage = {f"cdc_run_{k}": v for k, v in run.warehouse_usage.items()}

    def _forget_positions(self, fresh: bool, known_lsn: int) -> None:
        """Before the slot is recreated or a table published again, say so in the warehouse.

        Both open a gap the next snapshot must fill: if this run dies before that snapshot
        commits, the next run must snapshot again rather than trust the old positions.
        """
        published = self.repl.published() if self.repl.publication_exists() else set()
        forget = [
            t
            for t in self.tables
            if t.state is not None
            and t.snapshot_lsn
            and (fresh or PgReplication._qualified(t.spec.object) not in published)
        ]
        if not forget and not (fresh and known_lsn):
            return
        for table in forget:
            table.snapshot_lsn = 0
        self.lsn = 0 if fresh else known_lsn
        with self._unit() as unit:
            self._write_states(unit, forget)

    def _unit(self) -> LoadUnit:
        """A load unit under the source's lock: its streams share one slot and one position."""
        return LoadUnit(self.warehouse, state_id(self.name))

    def _describe(self, spec: StreamSpec) -> _Table:
        described = self.source.describe(spec.object)
        by_name = {c.name: c for c in described}
        wanted = list(spec.columns) if spec.columns is not None else list(by_name)
        identity = self.repl.identity(spec.object)
        keys = list(spec.primary_key) or identity.keys
        for field_name, names in (("columns", wanted), ("primary_key", keys)):
            for name in names:
                if name not in by_name:
                    raise SchemaDriftError(
                        f"stream '{spec.stream_id}': field '{field_name}': column '{name}' does"
                        f" not exist in source table '{spec.object}'"
                    )
        if not keys:
            raise SyncError(
                f"stream '{spec.stream_id}': table '{spec.object}' has no primary key; declare"
                " `primary_key` (with REPLICA IDENTITY FULL on the table) so changes can be"
                " matched to rows"
            )
        if not identity.full and set(keys) != set(identity.keys):
            # A DELETE carries only the identity columns: any other key could not find its row.
            raise SyncError(
                f"stream '{spec.stream_id}': primary_key {keys} differs from the replica identity"
                f" of '{spec.object}' {identity.keys}; declare primary_key {identity.keys}, or run"
                f" `ALTER TABLE {spec.object} REPLICA IDENTITY FULL;` to match rows on {keys}"
            )
        missing = [k for k in keys if k not in wanted]
        if missing:
            raise SyncError(
                f"stream '{spec.stream_id}': field 'columns' must include the key {missing}"
            )
        return _Table(
            spec,
            [by_name[n] for n in wanted],
            keys,
            self.repl.array_types(spec.object),
            identity.oid,
            identity.type_oids,
        )

    def _check_slot(self, slot: SlotInfo | None, known_lsn: int) -> None:
        where = f"source '{self.name}': replication slot '{self.repl.slot}'"
        held = f"The warehouse holds changes up to {lsn_text(known_lsn)}"
        if slot is None:
            raise ReplicationSlotLost(
                f"{where} no longer exists (dropped?). {held}; later changes are gone from the"
                f" server, so the tables cannot be kept exact by replaying. {RESNAPSHOT_HINT}"
            )
        if slot.lost:
            raise ReplicationSlotLost(
                f"{where} was invalidated: the server removed WAL it still needed (see"
                f" max_slot_wal_keep_size). {held}. {RESNAPSHOT_HINT}"
            )
        # The slot may stand past `known_lsn`: on a keepalive received before any change,
        # psycopg2 confirms the server's position by itself. That is safe (nothing we capture
        # was committed in between) and the stream restarts from the later of the two.
        if not self.repl.publication_exists():
            raise ReplicationSlotLost(
                f"source '{self.name}': publication '{self.repl.publication}' was dropped; the"
                f" slot cannot decode changes without it. {RESNAPSHOT_HINT}"
            )

    # -- snapshot -----------------------------------------------------------------------------

    def _snapshot(self, tables: list[_Table]) -> None:
        with self.repl.exported_snapshot() as (snapshot, snapshot_lsn):
            self.source.snapshot = snapshot
            try:
                with self._unit() as unit:
                    for table in tables:
                        self._copy(unit, table, snapshot_lsn)
                    self._write_states(unit, tables)
            finally:
                self.source.snapshot = None

    def _copy(self, unit: LoadUnit, table: _Table, snapshot_lsn: int) -> None:
        wh, spec, now = self.warehouse, table.spec, unit.now
        self.say(f"{spec.stream_id}: snapshot at {lsn_text(snapshot_lsn)}")
        new_table = wh.table(self.name, f"{spec.name}__dw_new")
        wh.execute(f"DROP TABLE IF EXISTS {new_table}")
        wh.create_table(new_table, table.columns, spec.table_layout)
        for column in cdc_columns(table.soft):
            wh.add_column(new_table, column)
        reader = self.source.read(ReadRequest(spec.object, tuple(table.columns)))
        rows = wh.load(
            new_table,
            [*table.columns, Column(LSN, "int64")],
            _with_lsn(reader, snapshot_lsn),
            now,
        )
        wh.swap_in(self.name, f"{spec.name}__dw_new", spec.name)
        wh.index_keys(self.name, spec.name, table.keys)
        table.snapshot_lsn, table.row_count = snapshot_lsn, rows
        table.run_counts.inserted += rows
        self.result.snapshots.append(spec.stream_id)
        unit.log(
            SyncLogLine(
                spec.stream_id,
                "cdc_snapshot",
                rows_read=rows,
                rows_inserted=rows,
                row_count=rows,
                cursor_after=lsn_text(snapshot_lsn),
            )
        )

    # -- stream -------------------------------------------------------------------------------

    def _stream(self, started: float) -> None:
        repl = self.repl
        target = repl.current_lsn()
        if target <= self.lsn:
            return
        self.say(f"{self.name}: applying changes {lsn_text(self.lsn)} .. {lsn_text(target)}")
        for table in self.tables:
            table.changes = TableChanges([table.columns.index(_col(table, k)) for k in table.keys])
        try:
            with self._unit() as unit:
                position = self._apply_stream(unit, target, started)
                self._stage_commit(unit, position)
            repl.confirm(self.lsn)
        except BaseException:
            with contextlib.suppress(Exception):
                repl.stop_stream()
            raise
        self.result.lsn_after = self.lsn
        # Advance only once our own stream has let go of the slot: racing its close made the
        # server refuse ("slot is active for PID …") and log an ERROR on every such run.
        if not repl.stop_stream():
            self.say(f"{self.name}: the server still holds the slot; the next run confirms it")
            return
        try:
            repl.advance(self.lsn)  # in case the server missed the last confirmation
        except Exception as exc:  # the next run confirms it anyway
            self.say(f"{self.name}: could not confirm {lsn_text(self.lsn)} yet: {exc}")

    def _apply_stream(self, unit: LoadUnit, target: int, started: float) -> int:
        """Apply the slot's transactions up to `target` (or the run's time limit), committing
        every commit interval; returns the position reached, to commit with the last ones."""
        repl = self.repl
        in_txn: pgoutput.Begin | None = None
        skip = False
        pending, last_commit, idle_since = 0, time.monotonic(), time.monotonic()
        position = self.lsn
        for message in repl.stream(self.lsn):
            if message is None or isinstance(message, Keepalive):
                if isinstance(message, Keepalive) and in_txn is None:
                    position = max(position, message.wal_end)
                if in_txn is None and position >= target:
                    break
                if message is None and time.monotonic() - idle_since > self.options.idle_timeout_s:
                    if in_txn is not None:  # never commit part of a source transaction
                        raise SyncError(
                            f"source '{self.name}': the server sent part of the transaction"
                            f" committed at {lsn_text(in_txn.final_lsn)}, then nothing for"
                            f" {self.options.idle_timeout_s:.0f} s; nothing of it was"
                            " applied, the next run resumes before it"
                        )
                    self.say(f"{self.name}: the server reported no progress; stopping here")
                    break
                continue
            idle_since = time.monotonic()
            if isinstance(message, pgoutput.Begin):
                in_txn, skip = message, message.final_lsn < self.lsn
            elif isinstance(message, pgoutput.Commit):
                in_txn = None
                if skip:
                    continue
                position = max(position, message.end_lsn)
                self.result.transactions += 1
                elapsed = time.monotonic() - last_commit
                if (
                    pending >= self.options.batch_changes
                    or elapsed >= self.options.commit_interval_s
                ):
                    self._commit(unit, position)
                    pending, last_commit = 0, time.monotonic()
                if position >= target or time.monotonic() - started > self.options.max_run_s:
                    break
            elif isinstance(message, pgoutput.Relation):
                self._relation(message)
            elif not skip and in_txn is not None:
                pending += self._change(message, in_txn.final_lsn)
                if pending >= self.options.batch_changes:
                    self._flush()  # a large transaction: into the open warehouse transaction
                    pending = 0
        return position

    def _relation(self, relation: pgoutput.Relation) -> None:
        # Matched by OID, not by name: a table renamed mid-stream keeps its changes.
        table = next((t for t in self.tables if t.oid == relation.oid), None)
        self.by_oid[relation.oid] = table
        if table is None:
            return
        if relation.qualified_name != PgReplication._qualified(table.spec.object):
            # Still the same table: its changes apply. A run that starts after the rename stops
            # at the missing name and asks for the catalog to follow.
            self.say(
                f"{table.spec.stream_id}: '{table.spec.object}' is now named"
                f" '{relation.qualified_name}' in the source"
            )
        names = [c.name for c in relation.columns]
        known = {c.name for c in table.columns}
        if table.spec.columns is None and any(n not in known for n in names):
            self._columns_added(table, [n for n in names if n not in known])
        retyped = [
            c.name
            for c in relation.columns
            if c.name in known and table.type_oids.get(c.name, c.type_oid) != c.type_oid
        ]
        if retyped:
            self._columns_retyped(table, retyped)
        table.type_oids.update({c.name: c.type_oid for c in relation.columns})
        table.relation = relation
        index = {c.name: i for i, c in enumerate(table.columns)}
        table.positions = [index.get(n) for n in names]

    def _columns_added(self, table: _Table, names: list[str]) -> None:
        # A column added while the stream runs: its first change brings a new relation message.
        # (A dropped column simply stops arriving: its values stay NULL from then on.)
        if table.spec.schema_policy is SchemaPolicy.FREEZE:
            raise SchemaDriftError(
                f"stream '{table.spec.stream_id}': new column(s) {', '.join(names)} in"
                f" '{table.spec.object}'; schema policy 'freeze' stops here: select columns"
                " explicitly or set schema_policy: add_columns"
            )
        described = {c.name: c for c in self.source.describe(table.spec.object)}
        added = [described.get(n) or Column(n, "string") for n in names]
        self._flush()
        target = self.warehouse.table(self.name, table.spec.name)
        for column in added:
            self.warehouse.add_column(target, column)
        table.columns = table.columns + added
        self._reset_changes(table)
        self.say(f"{table.spec.stream_id}: added column(s) {', '.join(names)}")

    def _columns_retyped(self, table: _Table, names: list[str]) -> None:
        # A column's type changed while the stream runs: the schema policy decides, as it does
        # between runs. Values are parsed into the warehouse column's type and fail loudly if
        # they do not fit.
        described = [c for c in self.source.describe(table.spec.object) if c.name in names]
        current = {c.name for c in described}
        known = [c for c in table.columns if c.name in current]
        plan = plan_schema(table.spec, described, known)
        if not plan.altered:
            return
        self._flush()
        target = self.warehouse.table(self.name, table.spec.name)
        for column in plan.altered:
            self.warehouse.alter_column_type(target, column)
        by_name = {c.name: c for c in plan.altered}
        table.columns = [by_name.get(c.name, c) for c in table.columns]
        self.say(f"{table.spec.stream_id}: column type(s) changed: {', '.join(names)}")

    def _evolve_tables(self, tables: list[_Table]) -> None:
        """Bring existing warehouse tables to the source's columns, as the schema policy says."""
        with self._unit():
            for table in tables:
                known = list(table.state.columns) if table.state and table.state.columns else None
                plan = plan_schema(table.spec, table.columns, known)
                target = self.warehouse.table(self.name, table.spec.name)
                for column in plan.added:
                    self.warehouse.add_column(target, column)
                for column in plan.altered:
                    self.warehouse.alter_column_type(target, column)
                table.columns = plan.target

    def _reset_changes(self, table: _Table) -> None:
        table.changes = TableChanges([table.columns.index(_col(table, k)) for k in table.keys])

    def _change(self, message: pgoutput.Message, lsn: int) -> int:
        oid = getattr(message, "relation_oid", None)
        if isinstance(message, pgoutput.Truncate):
            count = 0
            for oid in message.relation_oids:
                table = self.by_oid.get(oid)
                if table is not None and lsn >= table.snapshot_lsn and table.changes is not None:
                    table.changes.truncate(lsn)
                    count += 1
            return count
        if oid is None:
            return 0
        table = self.by_oid.get(oid)
        if table is None or lsn < table.snapshot_lsn or table.changes is None:
            return 0  # not captured, or already in the table's snapshot
        changes = table.changes
        if isinstance(message, pgoutput.Insert):
            changes.upsert(self._row(table, message.new), lsn)
        elif isinstance(message, pgoutput.Update):
            old_key = None if message.old is None else changes.key(self._row(table, message.old))
            changes.upsert(self._row(table, message.new), lsn, old_key)
        elif isinstance(message, pgoutput.Delete):
            changes.delete(changes.key(self._row(table, message.old)), lsn)
        return 1

    @staticmethod
    def _row(table: _Table, values: tuple[Value, ...]) -> list[Value]:
        row: list[Value] = [None] * len(table.columns)
        for value, position in zip(values, table.positions, strict=False):
            if position is not None:
                row[position] = value
        return row

    def _flush(self) -> None:
        now = datetime.now(UTC)
        for table in self.tables:
            changes = table.changes
            if changes is None or not (changes.rows or changes.truncated_lsn is not None):
                continue
            counts = apply_changes(
                self.warehouse,
                self.warehouse.table(self.name, table.spec.name),
                self.warehouse.stage_name(table.spec.stream_id),
                table.columns,
                table.keys,
                changes,
                self._converter(table),
                soft_deletes=table.soft,
                now=now,
            )
            self.result.changes += changes.changes
            changes.changes = 0
            table.counts.add(counts)
            table.row_count += counts.inserted - (0 if table.soft else counts.deleted)
            changes.clear()

    def _converter(self, table: _Table) -> Callable[[Column, list[str | None]], pa.Array]:
        def convert(column: Column, values: list[str | None]) -> pa.Array:
            sql_type = table.arrays.get(column.name)
            if sql_type is not None:
                values = self.repl.arrays_to_json(sql_type, values)
            try:
                return to_arrow(column, values, lambda m: self.say(f"{table.spec.stream_id}: {m}"))
            except SyncError as exc:
                with_context(exc, f"stream '{table.spec.stream_id}'")
                raise

        return convert

    def _commit(self, unit: LoadUnit, position: int) -> None:
        """Commit what is applied with every position, and only then confirm to the slot."""
        self._stage_commit(unit, position)
        unit.checkpoint()
        self.repl.confirm(self.lsn)

    def _stage_commit(self, unit: LoadUnit, position: int) -> None:
        """Flush, and hand the unit each stream's log line and every position to commit."""
        self._flush()
        before = self.lsn
        self.lsn = max(self.lsn, position)
        for table in self.tables:
            c = table.counts
            if c.inserted or c.updated or c.deleted:
                unit.log(
                    SyncLogLine(
                        table.spec.stream_id,
                        "cdc",
                        rows_read=c.inserted + c.updated + c.deleted,
                        rows_inserted=c.inserted,
                        rows_updated=c.updated,
                        rows_deleted=c.deleted,
                        row_count=table.row_count,
                        cursor_before=lsn_text(before),
                        cursor_after=lsn_text(self.lsn),
                    )
                )
                table.run_counts.add(c)
                table.counts = ApplyCounts()
        self._write_states(unit, self.tables)

    def _write_states(self, unit: LoadUnit, tables: list[_Table]) -> None:
        for table in tables:
            columns = tuple(table.columns)
            state = StreamState(
                position=CdcPosition(self.lsn, self.repl.slot, table.snapshot_lsn),
                columns=columns,
                schema_fingerprint=fingerprint(list(columns)),
                row_count=table.row_count,
            )
            unit.write_state(state, table.spec.stream_id)
            self.result.streams[table.spec.stream_id] = self._stream_result(table)
        unit.write_state(StreamState(position=CdcPosition(self.lsn, self.repl.slot)))

    def _stream_result(self, table: _Table) -> SyncResult:
        c = table.run_counts
        # Against the columns recorded before this run: what the `schema_drift` check reports.
        added, dropped, altered = column_changes(
            table.state.columns if table.state else None, table.columns
        )
        return SyncResult(
            table.spec.stream_id,
            "cdc",
            f"{self.name}.{table.spec.name}",
            rows_read=c.inserted + c.updated + c.deleted,
            rows_inserted=c.inserted,
            rows_updated=c.updated,
            rows_deleted=c.deleted,
            row_count=table.row_count,
            cursor_before=lsn_text(self.result.lsn_before),
            cursor_after=lsn_text(self.lsn),
            columns=list(table.columns),
            bookkeeping=cdc_columns(table.soft),
            columns_added=added,
            columns_altered=altered,
            columns_dropped=dropped,
            primary_key=list(table.keys),
        )


def _col(table: _Table, name: str) -> Column:
    return next(c for c in table.columns if c.name == name)


def _with_lsn(reader: pa.RecordBatchReader, lsn: int) -> pa.RecordBatchReader:
    """The snapshot's batches with `_dw_lsn` set to the snapshot position."""
    schema = reader.schema.append(pa.field(LSN, pa.int64()))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            column = pa.array([lsn] * batch.num_rows, pa.int64())
            yield pa.RecordBatch.from_arrays([*batch.columns, column], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
