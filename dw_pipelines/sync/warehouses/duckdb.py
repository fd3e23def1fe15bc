"""DuckDB, the embedded default warehouse: one file, zero setup."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dw_pipelines import settings
from dw_pipelines.sync.errors import WarehouseUnreachable
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.warehouses.base import SYNCED_AT, Warehouse

_TYPES = {
    "boolean": "BOOLEAN",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "REAL",
    "float64": "DOUBLE",
    "decimal": "DECIMAL",
    "string": "VARCHAR",
    "json": "JSON",
    "uuid": "UUID",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "binary": "BLOB",
}
STAGING_SCHEMA = "_dw_staging"
LOCK_REPORT_EVERY_S = 30.0
log = logging.getLogger(__name__)
_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?:\. See also|\.?$)")


def lock_holder(message: str) -> str:
    """Who holds the file, as DuckDB's lock error names it (program and PID), if it does."""
    match = _HOLDER.search(message)
    return match[1] if match else "another process"


DEFAULT_MEMORY_LIMIT = "192MB"


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    type_names = _TYPES
    reads_parquet_files = True

    def __init__(
        self,
        path: str,
        *,
        lock_timeout_s: float = 600.0,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = path
        self.catalog = Path(path).stem if path != ":memory:" else "memory"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect(lock_timeout_s)
        # Not through connect(config=...): that autoloads the icu extension, unavailable offline.
        self.execute("SET TimeZone = 'UTC'")
        self.execute("SET enable_progress_bar = false")  # it would litter run logs
        # DuckDB's default (80% of RAM) lets its buffer pool grow with the table; a cap keeps a
        # sync's memory flat, and DuckDB spills to `<file>.tmp` beyond it.
        memory_limit = memory_limit or settings.duckdb_memory_limit() or DEFAULT_MEMORY_LIMIT
        self.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.execute(f"SET threads = {int(threads)}")

    def _connect(self, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
        # One process writes a DuckDB file at a time: parallel syncs wait their turn for the lock,
        # saying so, since a wait of minutes looks like a hang otherwise.
        started = time.monotonic()
        next_report = 0.0
        while True:
            try:
                return duckdb.connect(self.path)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseUnreachable(
                        f"cannot open DuckDB warehouse {self.path}: {exc}"
                    ) from None
                waited = time.monotonic() - started
                holder = lock_holder(str(exc))
                if waited > lock_timeout_s:
                    raise WarehouseUnreachable(
                        f"DuckDB warehouse {self.path} is locked by {holder}; gave up after"
                        f" {lock_timeout_s:g} s. Another sync or a client (a notebook, the"
                        " DuckDB CLI) holds it open for writing."
                    ) from None
                if waited >= next_report:
                    log.warning(
                        "DuckDB warehouse %s is locked by %s; waiting for it (%.0f s so far,"
                        " giving up after %g s)",
                        self.path,
                        holder,
                        waited,
                        lock_timeout_s,
                    )
                    next_report = waited + LOCK_REPORT_EVERY_S
                time.sleep(0.2)
            except duckdb.Error as exc:
                raise WarehouseUnreachable(
                    f"cannot open DuckDB warehouse {self.path}: {exc}"
                ) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.con.execute(sql, list(params))

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = self.con.execute(sql, list(params)).fetchone()
        return int(result[0]) if result else 0

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # already rolled back by the failing statement

    def _load(
        self,
        table: str,
        columns: Sequence[Column],
        reader: pa.RecordBatchReader,
        synced_at: datetime | None,
    ) -> int:
        # DuckDB scans the reader batch by batch: nothing is materialized in Python.
        view = "_dw_incoming"
        names, exprs = self.insert_lists(columns, synced_at)
        self.con.register(view, reader)
        try:
            result = self.con.execute(
                f"INSERT INTO {table} ({names}) SELECT {exprs} FROM {view}",
                [synced_at] if synced_at else [],
            ).fetchone()
        finally:
            try:
                self.con.unregister(view)
            except duckdb.Error:
                pass  # an aborted transaction refuses even this; the view dies with it
        return int(result[0]) if result else 0

    def load_parquet(
        self,
        table: str,
        columns: Sequence[Column],
        present: set[str],
        path: str,
        constants: Sequence[tuple[str, Any]],
        synced_at: datetime,
    ) -> int:
        # DuckDB's own Parquet reader, in parallel.
        exprs = []
        for c in columns:
            ident, ddl = self.quote(c.name), self.type_ddl(c)
            if c.name not in present:
                exprs.append(f"CAST(NULL AS {ddl})")
            elif c.type == "json":
                exprs.append(f"CAST(to_json({ident}) AS {ddl})")
            else:
                exprs.append(f"CAST({ident} AS {ddl})")
        names = [self.quote(c.name) for c in columns] + [self.quote(n) for n, _ in constants]
        names.append(self.quote(SYNCED_AT))
        params = [v for _, v in constants] + [synced_at]
        exprs += [f"${i}" for i in range(1, len(params) + 1)]
        literal = "'" + path.replace("'", "''") + "'"
        result = self.con.execute(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(exprs)}"
            f" FROM read_parquet({literal})",
            params,
        ).fetchone()
        return int(result[0]) if result else 0

    def create_stage(self, name: str, columns: Sequence[Column]) -> str:
        # A real table (not TEMP) so large stages spill to disk; uncommitted, it never persists.
        self.ensure_schema(STAGING_SCHEMA)
        table = self.table(STAGING_SCHEMA, name)
        self.execute(f"CREATE TABLE {table} ({self.column_defs(columns, synced_at=False)})")
        return table

    def lock_stream(self, stream_id: str) -> None:
        pass  # the file lock already makes this process the only writer

    def close(self) -> None:
        self.con.close()

    def is_data_error(self, exc: BaseException) -> bool:
        return isinstance(exc, (duckdb.ConversionException, duckdb.InvalidInputException))
