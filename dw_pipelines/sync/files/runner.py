"""Load a file stream's new and rewritten objects, each exactly once.

One object, one load unit (`LoadUnit`, one warehouse transaction): its rows, its record in
`_dw.files` (key, ETag, size, LastModified, status), the stream's state and log line commit
together, so a run killed at any instant
leaves every object either fully loaded and recorded or not at all. A file that cannot be read
as the stream declares is quarantined: recorded with its error, none of its rows loaded, and the
rest of the batch goes on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import BinaryIO

from dw_pipelines.sync.engine import prepare_warehouse
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.files.cur import cur_units
from dw_pipelines.sync.files.formats import (
    FILE_COLUMNS,
    BadFile,
    BadRow,
    open_file,
    parquet_columns,
)
from dw_pipelines.sync.files.spec import (
    SOURCE_FILE,
    SOURCE_MODIFIED,
    FileFormat,
    FileStreamSpec,
    Layout,
)
from dw_pipelines.sync.files.store import ObjectChanged, ObjectInfo, S3Store
from dw_pipelines.sync.files.unit import Unit
from dw_pipelines.sync.load_unit import LoadUnit
from dw_pipelines.sync.result import FILES_MODE, SyncResult
from dw_pipelines.sync.schema import Column, column_changes, fingerprint
from dw_pipelines.sync.state import FilesPosition, StreamState, SyncLogLine
from dw_pipelines.sync.warehouses.base import STATE_SCHEMA, Warehouse

FILES_TABLE = "files"
BAD_ROWS_TABLE = "bad_rows"
LOADED, QUARANTINED, MANIFEST = "loaded", "quarantined", "manifest"


def ensure_file_tables(warehouse: Warehouse) -> None:
    ts = warehouse.type_ddl(Column("ts", "timestamptz"))
    with warehouse.transaction():
        warehouse.execute(
            f"CREATE TABLE IF NOT EXISTS {warehouse.table(STATE_SCHEMA, FILES_TABLE)} ("
            "stream_id VARCHAR NOT NULL, object_key VARCHAR NOT NULL, etag VARCHAR NOT NULL,"
            f" size BIGINT, last_modified {ts}, status VARCHAR NOT NULL, rows_loaded BIGINT,"
            f" bad_rows BIGINT, error VARCHAR, processed_at {ts} NOT NULL,"
            " PRIMARY KEY (stream_id, object_key))"
        )
        warehouse.execute(
            f"CREATE TABLE IF NOT EXISTS {warehouse.table(STATE_SCHEMA, BAD_ROWS_TABLE)} ("
            "stream_id VARCHAR NOT NULL, object_key VARCHAR NOT NULL, etag VARCHAR NOT NULL,"
            f" line BIGINT, error VARCHAR, row_text VARCHAR, recorded_at {ts} NOT NULL)"
        )


def processed(warehouse: Warehouse, stream_id: str) -> dict[str, str]:
    """Object key -> the ETag last processed (loaded or quarantined) for this stream."""
    return dict(
        warehouse.rows(
            f"SELECT object_key, etag FROM {warehouse.table(STATE_SCHEMA, FILES_TABLE)}"
            " WHERE stream_id = $1",
            [stream_id],
        )
    )


def loaded_keys(warehouse: Warehouse, stream_id: str) -> set[str]:
    return {
        key
        for (key,) in warehouse.rows(
            f"SELECT object_key FROM {warehouse.table(STATE_SCHEMA, FILES_TABLE)}"
            " WHERE stream_id = $1 AND status = $2",
            [stream_id, LOADED],
        )
    }


def listed_objects(
    spec: FileStreamSpec, store: S3Store, partition: date | None = None
) -> list[ObjectInfo]:
    """The stream's objects (in this partition), oldest first, key breaking ties."""
    objects = [
        o
        for o in store.list(spec.bucket, spec.prefix)
        if spec.matches(o.key)
        and (partition is None or spec.partition_of(o.key, o.last_modified) == partition)
    ]
    return sorted(objects, key=lambda o: (o.last_modified, o.key))


def sync_files(
    spec: FileStreamSpec,
    store: S3Store,
    warehouse: Warehouse,
    *,
    partition: date | None = None,
    max_files: int | None = None,
    keys: Collection[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> SyncResult:
    """Load every object of the stream (of one daily partition; only `keys` if given) not yet
    processed, oldest first."""
    spec.validate()
    started = time.monotonic()
    result = SyncResult(
        spec.stream_id,
        FILES_MODE,
        f"{spec.source}.{spec.name}",
        bookkeeping=list(FILE_COLUMNS),
        partition=partition.isoformat() if partition else None,
    )
    prepare_warehouse(warehouse, spec.source)
    ensure_file_tables(warehouse)
    before = _state(warehouse, spec.stream_id)
    result.cursor_before = result.cursor_after = _last_object(before)
    objects = listed_objects(spec, store, partition)
    result.files_listed = len(objects)
    done = processed(warehouse, spec.stream_id)
    todo = [o for o in objects if done.get(o.key) != o.etag and (keys is None or o.key in keys)]
    if spec.on_rewrite == "ignore":
        # Loaded objects keep their first version; a quarantined one may still be fixed.
        loaded = loaded_keys(warehouse, spec.stream_id)
        result.files_skipped += sum(1 for o in todo if o.key in loaded)
        todo = [o for o in todo if o.key not in loaded]
    if max_files is not None and len(todo) > max_files:
        result.files_pending = len(todo) - max_files
        todo = todo[:max_files]
    say = log or (lambda _m: None)
    if spec.layout is Layout.FILES:
        units = [Unit([o]) for o in todo]
    else:
        units = cur_units(spec, store, objects, done, say)
    _Loader(spec, store, warehouse, result, say).run(units)
    state = _state(warehouse, spec.stream_id)
    if state is not None:
        result.row_count = state.row_count
        result.columns = list(state.columns or ())
        result.cursor_after = _last_object(state)
        # what the `schema_drift` check reports: files under `evolve` add columns, never drop one
        result.columns_added, result.columns_dropped, result.columns_altered = column_changes(
            before.columns if before else None, result.columns
        )
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _state(warehouse: Warehouse, stream_id: str) -> StreamState | None:
    with warehouse.transaction():
        return warehouse.read_state(stream_id)


def _last_object(state: StreamState | None) -> str | None:
    position = state.position if state else None
    return position.last_object if isinstance(position, FilesPosition) else None


class _Loader:
    def __init__(
        self,
        spec: FileStreamSpec,
        store: S3Store,
        warehouse: Warehouse,
        result: SyncResult,
        say: Callable[[str], None],
    ) -> None:
        self.spec, self.store, self.wh, self.result, self.say = spec, store, warehouse, result, say
        self.files = warehouse.table(STATE_SCHEMA, FILES_TABLE)
        self.target = warehouse.table(spec.source, spec.name)

    def run(self, units: Iterable[Unit]) -> None:
        for unit in units:
            bad: list[BadRow] = []
            if unit.error is not None:
                self._quarantine(unit, unit.error, bad)
                continue
            try:
                with LoadUnit(self.wh, self.spec.stream_id) as load:
                    self._load(load, unit, bad)
            except BadFile as exc:
                self._quarantine(unit, str(exc), bad)
            except ObjectChanged as exc:
                self.result.files_skipped += 1
                self.say(f"{self.spec.stream_id}: {exc}; left for the next run")
            except Exception as exc:
                if not self.wh.is_data_error(exc):
                    raise
                # The warehouse refused a value (NUL in text, bad JSON, ...): the file is bad.
                text = str(exc).strip().splitlines()
                self._quarantine(unit, (text[0] if text else type(exc).__name__)[:500], bad)

    def _etag(self, key: str) -> str | None:
        return self._record_of(key)[0]

    def _record_of(self, key: str) -> tuple[str | None, str | None]:
        """(ETag, status) recorded for the object, read under the stream's lock."""
        rows = self.wh.rows(
            f"SELECT etag, status FROM {self.files} WHERE stream_id = $1 AND object_key = $2",
            [self.spec.stream_id, key],
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def _load(self, load: LoadUnit, unit: Unit, bad: list[BadRow]) -> None:
        spec, wh, now = self.spec, self.wh, load.now
        # Re-read under the lock: a concurrent run of this stream may have done it already.
        head = unit.manifest or unit.objects[0]
        prior, status = self._record_of(head.key)
        if (
            prior == head.etag
            or (unit.manifest is None and status == LOADED and spec.on_rewrite == "ignore")
            # another run applied a newer delivery of this period since we listed it
            or (unit.manifest is not None and prior != unit.listed_prior)
        ):
            self.result.files_skipped += 1
            return
        exists = wh.table_exists(spec.source, spec.name)
        state = load.state if exists else None
        columns = list(state.columns) if state and state.columns else None
        row_count = state.row_count if state else 0
        counts = [0, 0, 0, 0, 0]  # read, inserted, updated, unchanged, deleted
        for key in unit.replaces:
            counts[4] += self._delete_rows(key)
            wh.execute(
                f"DELETE FROM {self.files} WHERE stream_id = $1 AND object_key = $2",
                [spec.stream_id, key],
            )
        for obj in unit.objects:
            known = self._etag(obj.key) if unit.manifest else prior
            if known is not None:  # rewritten, or delivered again: its earlier rows go
                counts[4] += self._delete_rows(obj.key)
            object_bad: list[BadRow] = []  # max_bad_rows applies to each file
            try:
                columns, rows, updated, unchanged = self._load_object(
                    obj, columns, exists, object_bad, unit.hints, now
                )
            finally:
                bad.extend(object_bad)  # a rejected file's bad rows are recorded with it
            exists = True
            counts[0] += rows
            counts[1] += rows - updated
            counts[2] += updated
            counts[3] += unchanged
            self._record(obj, LOADED, rows, object_bad, None, now)
            self.result.loaded.append(obj.key)
            self.say(f"{spec.stream_id}: loaded s3://{spec.bucket}/{obj.key}: {rows} rows")
        if unit.manifest is not None:
            self._record(unit.manifest, MANIFEST, counts[0], [], None, now)
        read, inserted, updated, unchanged, deleted = counts
        row_count += inserted - deleted
        assert columns is not None
        load.write_state(
            StreamState(
                position=FilesPosition(unit.key, head.last_modified.isoformat()),
                columns=tuple(columns),
                schema_fingerprint=fingerprint(columns),
                row_count=row_count,
            )
        )
        load.log(
            SyncLogLine(
                spec.stream_id,
                FILES_MODE,
                rows_read=read,
                rows_inserted=inserted,
                rows_updated=updated,
                rows_unchanged=unchanged,
                rows_deleted=deleted,
                row_count=row_count,
                cursor_before=_last_object(state) or "",
                cursor_after=unit.key,
                window_text=self.result.partition,
            )
        )
        r = self.result
        r.files_loaded += len(unit.objects)
        r.files_replaced += int(prior is not None)
        r.rows_read += read
        r.rows_inserted += inserted
        r.rows_updated += updated
        r.rows_unchanged += unchanged
        r.rows_deleted += deleted
        r.bad_rows += len(bad)

    def _delete_rows(self, key: str) -> int:
        if not self.wh.table_exists(self.spec.source, self.spec.name):
            return 0
        return self.wh.delete_where(self.target, SOURCE_FILE, key)

    def _load_object(
        self,
        obj: ObjectInfo,
        known: list[Column] | None,
        exists: bool,
        bad: list[BadRow],
        hints: dict[str, str],
        now: datetime,
    ) -> tuple[list[Column], int, int, int]:
        """Load one object into the target (created if need be): (columns, rows applied, rows
        updated, rows left out because the table holds a newer version of their key)."""
        spec, wh = self.spec, self.wh
        if (
            wh.reads_parquet_files
            and spec.mode == "append"
            and _format(spec, obj.key) is FileFormat.PARQUET
        ):
            return self._load_parquet_natively(obj, known, exists, hints, now)

        def opener(random_access: bool) -> BinaryIO:
            if random_access:
                return self.store.open_random(spec.bucket, obj)
            return self.store.open(spec.bucket, obj)

        columns, reader = open_file(spec, obj.key, obj.last_modified, known, opener, bad, hints)
        all_columns = columns + FILE_COLUMNS
        self._prepare_table(columns, known, exists)
        if spec.mode == "append":
            # Straight into the table: the transaction takes the rows back if the file fails.
            return columns, wh.load(self.target, all_columns, reader, now), 0, 0
        # Mode merge (validated): a key a newer file already set keeps that value (an older
        # file rewritten later must not roll it back).
        stage = wh.create_stage(wh.stage_name(spec.stream_id), all_columns)
        rows = wh.load(stage, all_columns, reader)
        self._check_unique_keys(stage)
        merged = wh.merge_on_keys(
            self.target, stage, all_columns, spec.primary_key, now, newer_column=SOURCE_MODIFIED
        )
        wh.drop_stage(stage)
        return columns, rows - merged.skipped, merged.replaced, merged.skipped

    def _prepare_table(
        self, columns: list[Column], known: list[Column] | None, exists: bool
    ) -> None:
        spec, wh = self.spec, self.wh
        if not exists:
            wh.create_table(self.target, columns + FILE_COLUMNS, spec.table_layout)
            wh.index_keys(spec.source, spec.name, list(spec.primary_key) or [SOURCE_FILE])
            return
        known_names = {c.name for c in known or ()}
        for column in columns:
            if known is not None and column.name not in known_names:
                wh.add_column(self.target, column)  # schema policy evolve
                self.say(f"{spec.stream_id}: new column '{column.name}' ({column.type_label})")

    def _load_parquet_natively(
        self,
        obj: ObjectInfo,
        known: list[Column] | None,
        exists: bool,
        hints: dict[str, str],
        now: datetime,
    ) -> tuple[list[Column], int, int, int]:
        """A warehouse that reads Parquet itself (DuckDB, in parallel) gets the object as a
        temporary file (on disk, not in memory), cast to the stream's columns. A value it
        refuses is a data error: `run` quarantines the file."""
        with tempfile.NamedTemporaryFile(prefix="dw_", suffix=".parquet") as local:
            self.store.download(self.spec.bucket, obj, local)  # type: ignore[arg-type]
            columns, present = parquet_columns(self.spec, local.name, known, hints)
            self._prepare_table(columns, known, exists)
            constants = [(SOURCE_FILE, obj.key), (SOURCE_MODIFIED, obj.last_modified)]
            rows = self.wh.load_parquet(self.target, columns, present, local.name, constants, now)
        return columns, rows, 0, 0

    def _check_unique_keys(self, stage: str) -> None:
        repeated = self.wh.duplicate_keys(stage, self.spec.primary_key, limit=0).total
        if repeated:
            raise BadFile(
                f"{repeated} value(s) of the key ({', '.join(self.spec.primary_key)}) repeat"
                " within the file; mode merge needs one row per key per file"
            )

    def _quarantine(self, unit: Unit, error: str, bad: list[BadRow]) -> None:
        spec, wh = self.spec, self.wh
        head = unit.manifest or unit.objects[0]
        with LoadUnit(wh, spec.stream_id) as load:
            prior = self._etag(head.key)
            if prior == head.etag:
                return  # a concurrent run has dealt with this version already
            if prior is not None and unit.manifest is None and spec.on_rewrite == "replace":
                # The object's current version is bad: the rows of its previous one go too, so
                # the table never holds rows of a version that no longer exists.
                deleted = self._delete_rows(head.key)
                state = load.state
                if deleted and state is not None:
                    state = replace(state, row_count=state.row_count - deleted)
                    load.write_state(state)
                    last = _last_object(state) or ""
                    load.log(
                        SyncLogLine(
                            spec.stream_id,
                            FILES_MODE,
                            rows_deleted=deleted,
                            row_count=state.row_count,
                            cursor_before=last,
                            cursor_after=last,
                            window_text=self.result.partition,
                        )
                    )
                    self.result.rows_deleted += deleted
            self._record(head, QUARANTINED, 0, bad, error, load.now)
        self.result.files_quarantined += 1
        self.result.quarantined.append((head.key, error))
        self.say(f"{spec.stream_id}: quarantined s3://{spec.bucket}/{head.key}: {error}")

    def _record(
        self,
        obj: ObjectInfo,
        status: str,
        rows: int,
        bad: list[BadRow],
        error: str | None,
        now: datetime,
    ) -> None:
        sid = self.spec.stream_id
        self.wh.execute(
            f"INSERT INTO {self.files} (stream_id, object_key, etag, size, last_modified, status,"
            " rows_loaded, bad_rows, error, processed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (stream_id, object_key) DO UPDATE SET etag = excluded.etag,"
            " size = excluded.size, last_modified = excluded.last_modified,"
            " status = excluded.status, rows_loaded = excluded.rows_loaded,"
            " bad_rows = excluded.bad_rows, error = excluded.error,"
            " processed_at = excluded.processed_at",
            [
                sid,
                obj.key,
                obj.etag,
                obj.size,
                obj.last_modified,
                status,
                rows,
                len(bad),
                error,
                now,
            ],
        )
        for row in bad:
            self.wh.execute(
                f"INSERT INTO {self.wh.table(STATE_SCHEMA, BAD_ROWS_TABLE)}"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [sid, obj.key, obj.etag, row.line, row.error, row.text, now],
            )


def quarantined_files(warehouse: Warehouse, stream_id: str) -> list[tuple[str, str]]:
    """(key, error) of the stream's objects whose current version is quarantined."""
    if not warehouse.table_exists(STATE_SCHEMA, FILES_TABLE):
        return []
    return [
        (key, error)
        for key, error in warehouse.rows(
            f"SELECT object_key, error FROM {warehouse.table(STATE_SCHEMA, FILES_TABLE)}"
            " WHERE stream_id = $1 AND status = $2 ORDER BY processed_at, object_key",
            [stream_id, QUARANTINED],
        )
    ]


__all__ = ["SyncError", "sync_files", "quarantined_files", "listed_objects"]


def _format(spec: FileStreamSpec, key: str) -> FileFormat | None:
    try:
        return spec.format_of(key)
    except ValueError:
        return None
