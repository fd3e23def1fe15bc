"""PostgreSQL as the warehouse, through ADBC: Arrow batches go in with binary COPY."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from dw_pipelines.sync.errors import BadUrl, WarehouseUnreachable
from dw_pipelines.sync.redact import first_line, redact
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.urls import MalformedUrl, display_url, libpq_url, parse_url
from dw_pipelines.sync.warehouses.base import Warehouse

_TYPES = {
    "boolean": "BOOLEAN",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "REAL",
    "float64": "DOUBLE PRECISION",
    "decimal": "NUMERIC",
    "string": "TEXT",
    "json": "JSONB",
    "uuid": "UUID",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "binary": "BYTEA",
}


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    type_names = _TYPES

    def __init__(self, url: str) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        self.url = url
        try:
            parsed = parse_url(url)
        except MalformedUrl as exc:
            raise BadUrl(f"the PostgreSQL warehouse URL is malformed: {exc}") from None
        self.catalog = parsed.database or "postgres"
        try:
            self.con = adbc.connect(libpq_url(url))
        except Exception as exc:
            # The driver's message may quote the credentials: only a scrubbed first line is kept.
            raise WarehouseUnreachable(
                f"cannot connect to PostgreSQL warehouse {display_url(parsed)}:"
                f" {redact(first_line(exc), url)}"
            ) from None
        self.cur = self.con.cursor()
        self.execute("SET TIME ZONE 'UTC'")
        self.con.commit()

    @classmethod
    def canonical_text_sql(cls, column: Column, alias: str = "t") -> str:
        ref = f"{alias}.{cls.quote(column.name)}"
        if column.type in ("timestamp", "timestamptz"):
            # extract() is exact (numeric) since PostgreSQL 14
            return f"CAST(CAST(extract(epoch FROM {ref}) * 1000000 AS BIGINT) AS TEXT)"
        if column.type == "date":
            return f"to_char({ref}, 'YYYY-MM-DD')"
        return f"CAST({ref} AS TEXT)"

    @classmethod
    def hex_to_int_sql(cls, hex_text: str) -> str:
        return f"CAST(CAST('x' || {hex_text} AS BIT(32)) AS BIGINT)"

    def is_data_error(self, exc: BaseException) -> bool:
        # SQLSTATE class 22 (data exception) and 23 (integrity constraint violation)
        return str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cur.execute(sql, parameters=list(params) if params else None)

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        # ADBC reports no row count for DML run as a query: count what the statement returns.
        return int(
            self.scalar(
                f"WITH affected AS ({sql} RETURNING 1) SELECT count(*) FROM affected", params
            )
        )

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, parameters=list(params) if params else None)
        return list(self.cur.fetchall())

    def begin(self) -> None:
        pass  # ADBC connections are not autocommit: a transaction is always open

    def commit(self) -> None:
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def _load(
        self,
        table: str,
        columns: Sequence[Column],
        reader: pa.RecordBatchReader,
        synced_at: datetime | None,
    ) -> int:
        # Binary COPY cannot write text into jsonb/uuid columns, so batches land in a raw temp
        # table of Arrow's own types and are cast on the way into the typed table.
        raw = f"_dw_raw_{uuid.uuid4().hex[:8]}"
        self.cur.adbc_ingest(raw, reader, mode="create", temporary=True)
        names, exprs = self.insert_lists(columns, synced_at)
        count = self.count(
            f"INSERT INTO {table} ({names}) SELECT {exprs} FROM {self.quote(raw)}",
            [synced_at] if synced_at else [],
        )
        self.execute(f"DROP TABLE {self.quote(raw)}")
        return count

    def create_stage(self, name: str, columns: Sequence[Column]) -> str:
        table = self.quote(name)
        cols = self.column_defs(columns, synced_at=False)
        self.execute(f"CREATE TEMP TABLE {table} ({cols}) ON COMMIT DROP")
        return table

    def index_keys(self, schema: str, name: str, keys: Sequence[str]) -> None:
        # Without it every merge would scan the whole target table to find the changed keys.
        index = self.quote(f"{name}__dw_key")
        cols = ", ".join(self.quote(k) for k in keys)
        self.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self.table(schema, name)} ({cols})")

    def lock_stream(self, stream_id: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext($1))", [stream_id])

    def close(self) -> None:
        try:
            self.cur.close()
        finally:
            self.con.close()
