"""What the engine needs from a warehouse, and the SQL that is the same in every one of them."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.state import StreamState

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

    def is_data_error(self, exc: BaseException) -> bool:
        """The warehouse refused a value (conversion, bad text, constraint), not a failure of
        the warehouse itself: a file stream quarantines the file instead of failing the run."""
        return False

    # -- shared SQL ---------------------------------------------------------------------------

    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def table(self, schema: str, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}"

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

    def create_table(self, table: str, columns: Sequence[Column]) -> None:
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

    def duplicate_keys(self, table: str, keys: Sequence[str], *, limit: int = 5) -> DuplicateKeys:
        """The keys of `table` that more than one row holds (the most repeated first)."""
        cols = ", ".join(self.quote(k) for k in keys)
        repeated = f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols} HAVING count(*) > 1"
        total = int(self.scalar(f"SELECT count(*) FROM ({repeated}) d"))
        if not total or not limit:
            return DuplicateKeys(total, [])
        worst = self.rows(f"{repeated} ORDER BY n DESC LIMIT {int(limit)}")
        return DuplicateKeys(total, [(tuple(row[:-1]), int(row[-1])) for row in worst])

    def drop_stage(self, table: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {table}")

    @staticmethod
    def stage_name(stream_id: str) -> str:
        return f"stage_{stream_id.replace('.', '__')}_{uuid.uuid4().hex[:8]}"

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

    def log_sync(self, stream_id: str, finished_at: datetime, values: Sequence[Any]) -> None:
        """Append one line of run history, committed with the sync it describes."""
        self.execute(
            f"INSERT INTO {self.table(STATE_SCHEMA, SYNC_LOG_TABLE)} VALUES"
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [stream_id, finished_at, *values],
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
