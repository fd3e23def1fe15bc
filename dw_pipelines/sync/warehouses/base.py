"""What the engine needs from a warehouse, and the SQL that is the same in every one of them.

The write vocabulary (swap in a table, merge on keys, append what is missing, delete keys hard
or soft, find repeated keys) is defined here once. Each verb has a pure `*_sql` class method
that builds its statements without a connection, and a method that runs them inside the
caller's transaction and returns counts. DuckDB and PostgreSQL share the delete+insert forms;
a warehouse with a MERGE statement (BigQuery) overrides the verbs, and no runner changes.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import pyarrow as pa

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.spec import TableLayout
from dw_pipelines.sync.state import StreamState, SyncLogLine

STATE_SCHEMA = "_dw"
STATE_TABLE = "stream_state"
SYNC_LOG_TABLE = "sync_log"
SYNCED_AT = "_dw_synced_at"
# Set when the source deleted the row and the stream keeps deletes soft (CDC, Salesforce).
DELETED_AT = "_dw_deleted_at"


@dataclass(frozen=True)
class DuplicateKeys:
    """Keys held by more than one row: how many distinct keys repeat, and the worst few."""

    total: int
    examples: list[tuple[tuple[Any, ...], int]]  # (key values, rows holding that key)


@dataclass(frozen=True)
class Violations:
    """Rows a value check refuses: how many, and the first few (key values, checked values)."""

    total: int
    examples: list[tuple[Any, ...]]


# Buckets of a reconciliation: the first hex digits of md5(key text), so a difference found in
# one bucket is looked for among a 1/4096 share of the rows only.
BUCKET_DIGITS = 3
# Logical types whose text is the same in every database once canonicalized (numbers as
# decimal text, times as epoch microseconds); reconciliation compares only these.
CANONICAL_TYPES = (
    "int16", "int32", "int64", "string", "uuid", "date", "timestamp", "timestamptz",
)  # fmt: skip


@dataclass(frozen=True)
class MergeSql:
    """The statements of one merge: `skip` drop stage rows the target already has (as they
    are, or newer), `replace` deletes the target rows whose key the stage brings again ($1: the
    `only` value), and `insert` writes the stage ($1: the sync time, $2: the `only` value)."""

    skip: list[str]
    replace: str
    insert: str


@dataclass(frozen=True)
class MergeCounts:
    skipped: int = 0  # stage rows left out: the target holds them unchanged, or newer
    replaced: int = 0  # target rows a staged row with the same key replaced
    inserted: int = 0  # rows written from the stage, replacements included

    @property
    def new(self) -> int:
        return self.inserted - self.replaced


class Warehouse(ABC):
    """One open connection to a warehouse. All writes of one sync happen in `transaction()`."""

    dialect: str
    catalog: str

    # -- primitives each warehouse implements -------------------------------------------------

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    type_names: dict[str, str]  # logical type -> this warehouse's SQL type

    def type_ddl(self, column: Column) -> str:
        name = self.type_names[column.type]
        if column.type == "decimal":
            return f"{name}({column.precision},{column.scale})"
        return name

    @abstractmethod
    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT/UPDATE/DELETE and return how many rows it touched."""

    def load(
        self,
        table: str,
        columns: Sequence[Column],
        reader: pa.RecordBatchReader,
        synced_at: datetime | None = None,
    ) -> int:
        """Append every batch of `reader` to `table` (already created), casting to its types,
        stamping `_dw_synced_at` when given; returns the number of rows."""
        # The warehouse driver pulls the batches, so a source failure surfaces wrapped in the
        # driver's own error: keep the source's error and raise that one instead.
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except BaseException as exc:
                failure.append(exc)
                raise

        guarded = pa.RecordBatchReader.from_batches(reader.schema, batches())
        try:
            return self._load(table, columns, guarded, synced_at)
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    @abstractmethod
    def _load(
        self,
        table: str,
        columns: Sequence[Column],
        reader: pa.RecordBatchReader,
        synced_at: datetime | None,
    ) -> int: ...

    @abstractmethod
    def create_stage(self, name: str, columns: Sequence[Column]) -> str:
        """A scratch table that disappears with the transaction; returns its quoted name."""

    @abstractmethod
    def lock_stream(self, stream_id: str) -> None:
        """Serialize concurrent syncs of one stream until the transaction ends."""

    @abstractmethod
    def close(self) -> None: ...

    # Whether `load_parquet` reads a local Parquet file itself (faster than an Arrow stream).
    reads_parquet_files = False

    def load_parquet(
        self,
        table: str,
        columns: Sequence[Column],
        present: set[str],
        path: str,
        constants: Sequence[tuple[str, Any]],
        synced_at: datetime,
    ) -> int:
        """Append a local Parquet file: `columns` cast to their types (NULL where the file lacks
        one), constant columns and the sync time. Only where `reads_parquet_files`."""
        raise NotImplementedError

    def usage(self) -> dict[str, int]:
        """What this connection's work has cost so far, as counters under stable metadata keys
        (BigQuery: bytes processed and billed, slot milliseconds); none where nothing bills."""
        return {}

    def is_data_error(self, exc: BaseException) -> bool:
        """The warehouse refused a value (conversion, bad text, constraint), not a failure of
        the warehouse itself: a file stream quarantines the file instead of failing the run."""
        return False

    # -- shared SQL ---------------------------------------------------------------------------

    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    @classmethod
    def table(cls, schema: str, name: str) -> str:
        return f"{cls.quote(schema)}.{cls.quote(name)}"

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        result = self.rows(sql, params)
        return result[0][0] if result else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def table_exists(self, schema: str, name: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema = $1 AND table_name = $2",
                [schema, name],
            )
        )

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")

    def column_defs(self, columns: Sequence[Column], synced_at: bool) -> str:
        defs = [f"{self.quote(c.name)} {self.type_ddl(c)}" for c in columns]
        if synced_at:
            defs.append(
                f"{self.quote(SYNCED_AT)} {self.type_ddl(Column(SYNCED_AT, 'timestamptz'))}"
            )
        return ", ".join(defs)

    def create_table(
        self, table: str, columns: Sequence[Column], layout: TableLayout | None = None
    ) -> None:
        """A stream's table with its columns and `_dw_synced_at`. `layout` (partitioning and
        clustering) is BigQuery's: the other warehouses create the table without it."""
        self.execute(f"CREATE TABLE {table} ({self.column_defs(columns, synced_at=True)})")

    def add_column(self, table: str, column: Column) -> None:
        self.execute(
            f"ALTER TABLE {table} ADD COLUMN {self.quote(column.name)} {self.type_ddl(column)}"
        )

    def alter_column_type(self, table: str, column: Column) -> None:
        ident, ddl = self.quote(column.name), self.type_ddl(column)
        self.execute(
            f"ALTER TABLE {table} ALTER COLUMN {ident} TYPE {ddl} USING CAST({ident} AS {ddl})"
        )

    def cast_select(self, columns: Sequence[Column]) -> str:
        return ", ".join(f"CAST({self.quote(c.name)} AS {self.type_ddl(c)})" for c in columns)

    def insert_lists(
        self, columns: Sequence[Column], synced_at: datetime | None
    ) -> tuple[str, str]:
        """Column names and SELECT expressions for an INSERT ... SELECT of `columns`."""
        names = ", ".join(self.quote(c.name) for c in columns)
        exprs = self.cast_select(columns)
        if synced_at is not None:
            names += f", {self.quote(SYNCED_AT)}"
            exprs += ", $1"
        return names, exprs

    def column_exists(self, schema: str, name: str, column: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                [schema, name, column],
            )
        )

    def index_keys(self, schema: str, name: str, keys: Sequence[str]) -> None:
        """Index the columns incremental syncs match rows on, where the warehouse needs it."""
        return None  # DuckDB's zone maps and hash joins need no index

    def drop_stage(self, table: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {table}")

    @staticmethod
    def stage_name(stream_id: str) -> str:
        return f"stage_{stream_id.replace('.', '__')}_{uuid.uuid4().hex[:8]}"

    # -- write vocabulary -------------------------------------------------------------------

    @classmethod
    def same_key_sql(cls, keys: Sequence[str]) -> str:
        """Target row `t` and stage row `s` hold the same key (keys are never NULL)."""
        return " AND ".join(f"t.{cls.quote(k)} = s.{cls.quote(k)}" for k in keys)

    @classmethod
    def swap_in_sql(cls, schema: str, new_name: str, name: str) -> list[str]:
        return [
            f"DROP TABLE IF EXISTS {cls.table(schema, name)}",
            f"ALTER TABLE {cls.table(schema, new_name)} RENAME TO {cls.quote(name)}",
        ]

    def swap_in(self, schema: str, new_name: str, name: str) -> None:
        """Replace table `name` by `new_name`, built beside it: readers see the old table until
        the commit, then the new one, never a half-load."""
        for sql in self.swap_in_sql(schema, new_name, name):
            self.execute(sql)

    @classmethod
    def merge_sql(
        cls,
        target: str,
        stage: str,
        columns: Sequence[Column],
        keys: Sequence[str],
        *,
        skip_unchanged: bool = False,
        live_column: str | None = None,
        newer_column: str | None = None,
        only: str | None = None,
    ) -> MergeSql:
        q = cls.quote
        same_key = cls.same_key_sql(keys)
        skip = []
        if skip_unchanged:
            same_row = " AND ".join(
                f"t.{q(c.name)} IS NOT DISTINCT FROM s.{q(c.name)}" for c in columns
            )
            live = f" AND t.{q(live_column)} IS NULL" if live_column else ""
            skip.append(
                f"DELETE FROM {stage} s"
                f" WHERE EXISTS (SELECT 1 FROM {target} t WHERE {same_key} AND {same_row}{live})"
            )
        if newer_column:
            newer = q(newer_column)
            skip.append(
                f"DELETE FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t"
                f" WHERE {same_key} AND t.{newer} > s.{newer})"
            )
        replace_where = f"s.{q(only)} = $1 AND {same_key}" if only else same_key
        names = ", ".join(q(c.name) for c in columns) + f", {q(SYNCED_AT)}"
        values = ", ".join(f"s.{q(c.name)}" for c in columns) + ", $1"
        return MergeSql(
            skip=skip,
            replace=(
                f"DELETE FROM {target} t"
                f" WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {replace_where})"
            ),
            insert=f"INSERT INTO {target} ({names}) SELECT {values} FROM {stage} s"
            + (f" WHERE s.{q(only)} = $2" if only else ""),
        )

    def merge_on_keys(
        self,
        target: str,
        stage: str,
        columns: Sequence[Column],
        keys: Sequence[str],
        synced_at: datetime,
        *,
        skip_unchanged: bool = False,
        live_column: str | None = None,
        newer_column: str | None = None,
        only: tuple[str, Any] | None = None,
    ) -> MergeCounts:
        """Upsert the stage's rows (of `columns`, one per key) into `target` by key.

        `skip_unchanged` leaves alone rows the target already holds exactly (of its live rows,
        with `live_column`), so `_dw_synced_at` keeps meaning "last changed"; `newer_column`
        keeps a target row whose value there is greater; `only` = (column, value) merges just
        the stage rows with that value."""
        sql = self.merge_sql(
            target,
            stage,
            columns,
            keys,
            skip_unchanged=skip_unchanged,
            live_column=live_column,
            newer_column=newer_column,
            only=only[0] if only else None,
        )
        skipped = sum(self.count(statement) for statement in sql.skip)
        replaced = self.count(sql.replace, [only[1]] if only else [])
        inserted = self.count(sql.insert, [synced_at, only[1]] if only else [synced_at])
        return MergeCounts(skipped, replaced, inserted)

    @classmethod
    def append_missing_sql(
        cls,
        target: str,
        stage: str,
        columns: Sequence[Column],
        *,
        equal: Sequence[str],
        null_safe: Sequence[str],
    ) -> str:
        q = cls.quote
        # `=` where a column is never NULL lets every warehouse hash-join on it.
        same = " AND ".join(
            [f"t.{q(c)} = s.{q(c)}" for c in equal]
            + [f"t.{q(c)} IS NOT DISTINCT FROM s.{q(c)}" for c in null_safe]
        )
        names = ", ".join(q(c.name) for c in columns) + f", {q(SYNCED_AT)}"
        values = ", ".join(f"s.{q(c.name)}" for c in columns) + ", $1"
        return (
            f"INSERT INTO {target} ({names}) SELECT {values} FROM {stage} s"
            f" WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {same})"
        )

    def append_missing(
        self,
        target: str,
        stage: str,
        columns: Sequence[Column],
        synced_at: datetime,
        *,
        equal: Sequence[str],
        null_safe: Sequence[str] = (),
    ) -> int:
        """Append the stage rows the target does not hold yet, rows matched on `equal` (never
        NULL) and `null_safe` columns; returns how many were appended."""
        sql = self.append_missing_sql(target, stage, columns, equal=equal, null_safe=null_safe)
        return self.count(sql, [synced_at])

    @classmethod
    def delete_keys_sql(
        cls,
        target: str,
        stage: str,
        keys: Sequence[str],
        *,
        soft: bool,
        absent: bool = False,
        only: str | None = None,
        copy: Sequence[str] = (),
    ) -> str:
        """$1: the deletion time when soft; then the `only` value."""
        q = cls.quote
        same_key = cls.same_key_sql(keys)
        if only:
            same_key = f"s.{q(only)} = ${2 if soft else 1} AND {same_key}"
        if not soft:
            exists = "NOT EXISTS" if absent else "EXISTS"
            return (
                f"DELETE FROM {target} t WHERE {exists} (SELECT 1 FROM {stage} s WHERE {same_key})"
            )
        sets = f"{q(DELETED_AT)} = $1, {q(SYNCED_AT)} = $1" + "".join(
            f", {q(c)} = s.{q(c)}" for c in copy
        )
        live = f"t.{q(DELETED_AT)} IS NULL"
        if absent:
            return (
                f"UPDATE {target} t SET {sets} WHERE {live}"
                f" AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {same_key})"
            )
        return f"UPDATE {target} t SET {sets} FROM {stage} s WHERE {same_key} AND {live}"

    def delete_keys(
        self,
        target: str,
        stage: str,
        keys: Sequence[str],
        *,
        soft_at: datetime | None,
        absent: bool = False,
        only: tuple[str, Any] | None = None,
        copy: Sequence[str] = (),
    ) -> int:
        """Delete the target rows whose key is in the stage (with `absent`: is not), or, with
        `soft_at`, mark the live ones deleted then, copying `copy` columns from the stage."""
        sql = self.delete_keys_sql(
            target,
            stage,
            keys,
            soft=soft_at is not None,
            absent=absent,
            only=only[0] if only else None,
            copy=copy,
        )
        params = ([soft_at] if soft_at is not None else []) + ([only[1]] if only else [])
        return self.count(sql, params)

    @classmethod
    def delete_all_sql(cls, target: str, *, soft: bool, stamp: Sequence[str] = ()) -> str:
        if not soft:
            return f"DELETE FROM {target}"
        q = cls.quote
        sets = f"{q(DELETED_AT)} = $1, {q(SYNCED_AT)} = $1" + "".join(
            f", {q(c)} = ${n}" for n, c in enumerate(stamp, start=2)
        )
        return f"UPDATE {target} SET {sets} WHERE {q(DELETED_AT)} IS NULL"

    def delete_all(
        self, target: str, *, soft_at: datetime | None, stamp: Sequence[tuple[str, Any]] = ()
    ) -> int:
        """Delete every row (a truncated source table), or mark the live ones deleted."""
        if soft_at is None:
            return self.count(self.delete_all_sql(target, soft=False))
        sql = self.delete_all_sql(target, soft=True, stamp=[c for c, _ in stamp])
        return self.count(sql, [soft_at, *(v for _, v in stamp)])

    @classmethod
    def delete_where_sql(cls, target: str, column: str) -> str:
        return f"DELETE FROM {target} WHERE {cls.quote(column)} = $1"

    def delete_where(self, target: str, column: str, value: Any) -> int:
        """Delete the rows whose `column` holds `value` (a file's rows, by its key)."""
        return self.count(self.delete_where_sql(target, column), [value])

    @classmethod
    def null_keys_sql(cls, table: str, keys: Sequence[str]) -> str:
        null_key = " OR ".join(f"{cls.quote(k)} IS NULL" for k in keys)
        return f"SELECT count(*) FROM {table} WHERE {null_key}"

    def null_keys(self, table: str, keys: Sequence[str]) -> int:
        """How many rows of `table` lack part of their key."""
        return int(self.scalar(self.null_keys_sql(table, keys)))

    @classmethod
    def duplicate_keys_sql(cls, table: str, keys: Sequence[str]) -> str:
        cols = ", ".join(cls.quote(k) for k in keys)
        return f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols} HAVING count(*) > 1"

    def duplicate_keys(self, table: str, keys: Sequence[str], *, limit: int = 5) -> DuplicateKeys:
        """The keys of `table` that more than one row holds (the most repeated first)."""
        repeated = self.duplicate_keys_sql(table, keys)
        total = int(self.scalar(f"SELECT count(*) FROM ({repeated}) d"))
        if not total or not limit:
            return DuplicateKeys(total, [])
        worst = self.rows(f"{repeated} ORDER BY n DESC LIMIT {int(limit)}")
        return DuplicateKeys(total, [(tuple(row[:-1]), int(row[-1])) for row in worst])

    @classmethod
    def violation_predicate_sql(
        cls, check: str, columns: Sequence[str], n_values: int = 0, low: bool = False,
        high: bool = False, first_param: int = 1,
    ) -> str:  # fmt: skip
        """The rows a value check refuses; accepted values and bounds are parameters from
        `$first_param` on (the values, then the low bound, then the high one)."""
        q = cls.quote
        if check == "not_null":
            return " OR ".join(f"t.{q(c)} IS NULL" for c in columns)
        column = f"t.{q(columns[0])}"
        if check == "accepted_values":
            params = ", ".join(f"${first_param + i}" for i in range(n_values))
            return f"{column} NOT IN ({params})"
        bounds = []
        n = first_param
        if low:
            bounds.append(f"{column} < ${n}")
            n += 1
        if high:
            bounds.append(f"{column} > ${n}")
        return " OR ".join(bounds)

    @classmethod
    def violations_sql(
        cls,
        table: str,
        check: str,
        columns: Sequence[str],
        *,
        keys: Sequence[str],
        n_values: int = 0,
        low: bool = False,
        high: bool = False,
        live_column: str | None = None,
        limit: int = 5,
    ) -> tuple[str, str]:
        """(count, examples) queries of the rows a not_null, accepted_values or range check
        refuses; examples select the keys then the checked columns, in key order."""
        q = cls.quote
        where = f"({cls.violation_predicate_sql(check, columns, n_values, low, high)})"
        if live_column:
            where += f" AND t.{q(live_column)} IS NULL"
        shown = ", ".join(f"t.{q(c)}" for c in (*keys, *columns))
        order = ", ".join(f"t.{q(k)}" for k in keys) or "1"
        return (
            f"SELECT count(*) FROM {table} t WHERE {where}",
            f"SELECT {shown} FROM {table} t WHERE {where} ORDER BY {order} LIMIT {int(limit)}",
        )

    def violations(
        self,
        table: str,
        check: str,
        columns: Sequence[str],
        *,
        values: Sequence[Any] = (),
        low: float | None = None,
        high: float | None = None,
        keys: Sequence[str] = (),
        live_column: str | None = None,
        limit: int = 5,
    ) -> Violations:
        """The rows of `table` (live ones, with `live_column`) a value check refuses."""
        count_sql, examples_sql = self.violations_sql(
            table, check, columns, keys=keys, n_values=len(values), low=low is not None,
            high=high is not None, live_column=live_column, limit=limit,
        )  # fmt: skip
        params = [*values, *(b for b in (low, high) if b is not None)]
        total = int(self.scalar(count_sql, params))
        return Violations(total, self.rows(examples_sql, params) if total else [])

    # -- reconciliation checksums ----------------------------------------------------------

    @classmethod
    def canonical_text_sql(cls, column: Column, alias: str = "t") -> str:
        """The column's value as text that every database renders alike (CANONICAL_TYPES)."""
        ref = f"{alias}.{cls.quote(column.name)}"
        if column.type in ("timestamp", "timestamptz"):
            return f"CAST(epoch_us({ref}) AS VARCHAR)"
        if column.type == "date":
            return f"strftime({ref}, '%Y-%m-%d')"
        if column.type == "uuid":
            return f"lower(CAST({ref} AS VARCHAR))"
        return f"CAST({ref} AS VARCHAR)"

    @classmethod
    def hex_to_int_sql(cls, hex_text: str) -> str:
        """Eight hex digits as a non-negative integer."""
        return f"CAST('0x' || {hex_text} AS BIGINT)"

    @classmethod
    def checksum_parts_sql(
        cls, keys: Sequence[Column], cursor: Column | None
    ) -> tuple[str, str, str]:
        """(bucket, row hash, key text) expressions over row `t`: the bucket from md5 of the
        key's text, the row hash an integer from md5 of key and cursor text, summed per bucket
        so the checksum does not depend on row order."""
        key_text = " || '|' || ".join(f"coalesce({cls.canonical_text_sql(c)}, '')" for c in keys)
        row_text = key_text
        if cursor is not None:
            row_text += f" || '|' || coalesce({cls.canonical_text_sql(cursor)}, '')"
        bucket = f"substr(md5({key_text}), 1, {BUCKET_DIGITS})"
        row_hash = cls.hex_to_int_sql(f"substr(md5({row_text}), 1, 8)")
        return bucket, row_hash, key_text

    @classmethod
    def compared_rows_where_sql(
        cls,
        keys: Sequence[Column],
        cursor: Column | None,
        *,
        below: bool,
        exclude: str | None,
        live_column: str | None,
    ) -> str:
        """$1: the cursor bound when `below`; `exclude` a stage of keys set aside."""
        q = cls.quote
        where = ["TRUE"]
        if below and cursor is not None:
            where.append(f"t.{q(cursor.name)} < $1")
        if exclude:
            same_key = cls.same_key_sql([k.name for k in keys])
            where.append(f"NOT EXISTS (SELECT 1 FROM {exclude} s WHERE {same_key})")
        if live_column:
            where.append(f"t.{q(live_column)} IS NULL")
        return " AND ".join(where)

    @classmethod
    def key_checksums_sql(
        cls,
        table: str,
        keys: Sequence[Column],
        cursor: Column | None,
        *,
        below: bool = False,
        exclude: str | None = None,
        live_column: str | None = None,
    ) -> str:
        """Per bucket: row count and the sum of row hashes."""
        bucket, row_hash, _ = cls.checksum_parts_sql(keys, cursor)
        where = cls.compared_rows_where_sql(
            keys, cursor, below=below, exclude=exclude, live_column=live_column
        )
        return (
            f"SELECT {bucket} AS bucket, count(*), sum({row_hash}) FROM {table} t"
            f" WHERE {where} GROUP BY {bucket}"
        )

    @classmethod
    def key_rows_sql(
        cls,
        table: str,
        keys: Sequence[Column],
        cursor: Column | None,
        *,
        below: bool = False,
        exclude: str | None = None,
        live_column: str | None = None,
        limit: int = 20_000,
    ) -> str:
        """The key and cursor text of the compared rows in one bucket (the last parameter)."""
        bucket, _, key_text = cls.checksum_parts_sql(keys, cursor)
        cursor_text = cls.canonical_text_sql(cursor) if cursor is not None else "''"
        where = cls.compared_rows_where_sql(
            keys, cursor, below=below, exclude=exclude, live_column=live_column
        )
        n = 2 if below and cursor is not None else 1
        return (
            f"SELECT {key_text}, {cursor_text} FROM {table} t WHERE {where} AND {bucket} = ${n}"
            f" ORDER BY 1 LIMIT {int(limit)}"
        )

    def key_checksums(
        self,
        table: str,
        keys: Sequence[Column],
        cursor: Column | None,
        *,
        below: Any = None,
        exclude: str | None = None,
        live_column: str | None = None,
    ) -> dict[str, tuple[int, int]]:
        """{bucket: (rows, sum of row hashes)} of the rows with cursor below `below` (all when
        None), leaving out keys held by the stage `exclude` and, with `live_column`, deleted rows."""
        sql = self.key_checksums_sql(
            table, keys, cursor, below=below is not None, exclude=exclude, live_column=live_column
        )
        params = [below] if below is not None else []
        return {b: (int(n), int(s)) for b, n, s in self.rows(sql, params)}

    def key_rows(
        self,
        table: str,
        keys: Sequence[Column],
        cursor: Column | None,
        bucket: str,
        *,
        below: Any = None,
        exclude: str | None = None,
        live_column: str | None = None,
        limit: int = 20_000,
    ) -> list[tuple[str, str]]:
        sql = self.key_rows_sql(
            table, keys, cursor, below=below is not None, exclude=exclude,
            live_column=live_column, limit=limit,
        )  # fmt: skip
        params = ([below] if below is not None else []) + [bucket]
        return [(str(k), str(c)) for k, c in self.rows(sql, params)]

    def max_value(self, table: str, column: str) -> Any:
        return self.scalar(f"SELECT max({self.quote(column)}) FROM {table}")

    def row_count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    # -- state --------------------------------------------------------------------------------

    def ensure_state_table(self) -> None:
        ts = self.type_ddl(Column("ts", "timestamptz"))
        self.ensure_schema(STATE_SCHEMA)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table(STATE_SCHEMA, STATE_TABLE)} ("
            f"stream_id VARCHAR PRIMARY KEY, state VARCHAR NOT NULL, updated_at {ts} NOT NULL)"
        )
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table(STATE_SCHEMA, SYNC_LOG_TABLE)} ("
            f"stream_id VARCHAR NOT NULL, finished_at {ts} NOT NULL, mode VARCHAR NOT NULL,"
            " rows_read BIGINT, rows_inserted BIGINT, rows_updated BIGINT, rows_unchanged BIGINT,"
            " rows_deleted BIGINT, row_count BIGINT, cursor_before VARCHAR, cursor_after VARCHAR,"
            " window_text VARCHAR)"
        )

    def log_sync(self, line: SyncLogLine, finished_at: datetime) -> None:
        """Append one line of run history, committed with the sync it describes."""
        names = [f.name for f in fields(line)]
        values = [getattr(line, n) for n in names]
        self.execute(
            f"INSERT INTO {self.table(STATE_SCHEMA, SYNC_LOG_TABLE)}"
            f" (finished_at, {', '.join(names)})"
            f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 2))})",
            [finished_at, *values],
        )

    def read_state(self, stream_id: str) -> StreamState | None:
        if not self.table_exists(STATE_SCHEMA, STATE_TABLE):
            return None
        raw = self.scalar(
            f"SELECT state FROM {self.table(STATE_SCHEMA, STATE_TABLE)} WHERE stream_id = $1",
            [stream_id],
        )
        return StreamState.from_json(raw) if raw is not None else None

    def write_state(self, stream_id: str, state: StreamState, now: datetime) -> None:
        self.execute(
            f"INSERT INTO {self.table(STATE_SCHEMA, STATE_TABLE)} (stream_id, state, updated_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (stream_id)"
            " DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            [stream_id, state.to_json(), now],
        )
