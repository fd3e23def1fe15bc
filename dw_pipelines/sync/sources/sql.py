"""SQL databases (PostgreSQL, MySQL/MariaDB, SQLite) as a source.

PostgreSQL is read through ADBC, which streams `COPY ... TO STDOUT (FORMAT binary)` straight
into Arrow: measured here at the speed of `psql \\copy` for a 1M-row table, with memory bounded
by its batch size. Other databases are read through SQLAlchemy with a server-side cursor and
`fetchmany`, converted to Arrow one batch at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import adbc_driver_manager
import adbc_driver_postgresql
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import types as sat
from sqlalchemy.dialects import mysql, postgresql

from dw_pipelines.sync.cdc.pgtext import SESSION_SETTINGS, TEXT_PARSED, to_arrow
from dw_pipelines.sync.errors import (
    BadUrl,
    DataConversionError,
    SourceObjectMissing,
    SourceUnreachable,
    SyncError,
)
from dw_pipelines.sync.redact import first_line, redact
from dw_pipelines.sync.schema import Column, arrow_schema, decimal_column
from dw_pipelines.sync.sources.base import ReadHorizon, ReadRequest, SourceAbilities
from dw_pipelines.sync.state import CursorValue
from dw_pipelines.sync.urls import (
    CONNECT_TIMEOUT_S,
    MalformedUrl,
    display_url,
    libpq_url,
    sqlalchemy_url,
)
from dw_pipelines.sync.warehouses.base import BUCKET_DIGITS


def split_object(obj: str) -> tuple[str | None, str]:
    schema, _, table = obj.rpartition(".")
    return (schema or None), table


def logical_column(name: str, t: sat.TypeEngine[Any], nullable: bool, dialect: str) -> Column:
    """Map a reflected SQLAlchemy type onto the engine's logical types."""
    if isinstance(t, sat.Boolean):
        return Column(name, "boolean", nullable)
    if isinstance(t, sat.Uuid | postgresql.UUID):
        return Column(name, "uuid", nullable)
    if isinstance(t, sat.JSON):
        return Column(name, "json", nullable)
    if isinstance(t, postgresql.ARRAY):
        return Column(name, "json", nullable)
    if isinstance(t, sat.Float):
        single = isinstance(t, postgresql.REAL) or type(t) is mysql.FLOAT
        return Column(name, "float32" if single and dialect != "sqlite" else "float64", nullable)
    if isinstance(t, sat.Integer):
        if dialect == "sqlite":
            return Column(name, "int64", nullable)
        unsigned = getattr(t, "unsigned", False)
        if isinstance(t, sat.BigInteger):
            return (
                decimal_column(name, 20, 0, nullable)
                if unsigned
                else Column(name, "int64", nullable)
            )
        if isinstance(t, sat.SmallInteger) or type(t).__name__ == "TINYINT":
            return Column(name, "int32" if unsigned else "int16", nullable)
        return Column(name, "int64" if unsigned else "int32", nullable)
    if isinstance(t, sat.Numeric):
        return decimal_column(name, t.precision, t.scale, nullable)
    if isinstance(t, sat.DateTime):
        aware = bool(getattr(t, "timezone", False)) or isinstance(t, mysql.TIMESTAMP)
        return Column(name, "timestamptz" if aware else "timestamp", nullable)
    if isinstance(t, sat.Date):
        return Column(name, "date", nullable)
    if isinstance(t, sat.Time) and not getattr(t, "timezone", False):
        return Column(name, "time", nullable)
    if isinstance(t, sat._Binary):
        return Column(name, "binary", nullable)
    return Column(name, "string", nullable)


def _needs_text_cast(t: sat.TypeEngine[Any], column: Column) -> bool:
    """Types delivered as text whatever the driver would make of them (uuid, json, interval…)."""
    if column.type in ("uuid", "json"):
        return True
    return column.type == "string" and not isinstance(t, sat.String | sat.Enum)


# Open transactions of client sessions in this database, other than our own; a session without
# one has no xact_start. `statement_timestamp()` when none is open: the read starts after it.
_HORIZON_SQL = """
SELECT
    pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
    h.at,
    h.at AT TIME ZONE current_setting('TimeZone')
FROM (
    SELECT least(statement_timestamp(), min(xact_start)) AS at
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend' AND xact_start IS NOT NULL
) h
"""


class SqlSource:
    """One SQL database. Connections open lazily and errors never show the password."""

    abilities: ClassVar[SourceAbilities] = SourceAbilities(read_horizon=True, checksums=True)

    def __init__(
        self,
        url: str,
        name: str = "source",
        batch_rows: int = 50_000,
        batch_bytes: int = 1 << 20,
        url_env: str | None = None,
    ) -> None:
        # batch_rows bounds SQLAlchemy batches; ADBC (PostgreSQL) batches are bounded in bytes.
        self.url, self.name, self.batch_rows, self.batch_bytes = url, name, batch_rows, batch_bytes
        self.url_env = url_env
        try:
            self._sa_url = sqlalchemy_url(url)
        except MalformedUrl as exc:
            raise self._bad_url(f"is malformed: {exc}") from None
        self.dialect = self._sa_url.get_backend_name()
        try:
            self._sa_url.get_dialect()
        except sa.exc.NoSuchModuleError:
            raise self._bad_url(f"names an unknown database '{self._sa_url.drivername}'") from None
        self._engine: sa.Engine | None = None
        self._tables: dict[str, sa.Table] = {}
        # An exported PostgreSQL snapshot (CDC): reads then see exactly the database as of a
        # replication slot's start point, so snapshot and change stream neither gap nor overlap.
        self.snapshot: str | None = None
        # Told, during a CDC snapshot, how many values a column's type cannot hold became NULL.
        self.warn: Callable[[str], None] | None = None

    # -- connection ---------------------------------------------------------------------------

    def _bad_url(self, problem: str) -> BadUrl:
        where = f"environment variable {self.url_env}" if self.url_env else "its URL"
        return BadUrl(
            f"source '{self.name}': the URL in {where} {problem}. Expected"
            " driver://user:password@host:port/database (e.g. postgresql://, mysql://,"
            " sqlite:///path); an '@' in the database name or query is written %40."
        )

    def _fail(self, exc: BaseException, what: str) -> SyncError:
        detail = redact(first_line(exc), self.url)
        return SourceUnreachable(
            f"source '{self.name}' ({display_url(self.url)}): {what}:"
            f" {type(exc).__name__}: {detail}"
        )

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            connect_args: dict[str, Any] = {}
            if self.dialect in ("postgresql", "mysql"):
                connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
            if self.dialect == "mysql":
                # TIMESTAMP columns come back in the session time zone: make that UTC.
                connect_args["init_command"] = "SET time_zone = '+00:00'"
            try:
                self._engine = sa.create_engine(
                    self._sa_url, connect_args=connect_args, poolclass=sa.pool.NullPool
                )
            except ImportError as exc:
                raise self._bad_url(
                    f"names the driver '{self._sa_url.drivername}', which is not installed"
                    f" ({exc.name or exc})"
                ) from None
        return self._engine

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except SyncError:
            raise
        # Not only DBAPIError: any driver error may quote the credentials. The cause is
        # dropped because its text holds them.
        except Exception as exc:
            raise self._fail(exc, "cannot connect") from None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- schema -------------------------------------------------------------------------------

    def _table(self, obj: str) -> sa.Table:
        if obj not in self._tables:
            schema, table = split_object(obj)
            with self._connect() as conn:
                try:
                    # Columns only: full Table reflection also reads keys, indexes and comments.
                    reflected = sa.inspect(conn).get_columns(table, schema=schema)
                    self._tables[obj] = sa.Table(
                        table,
                        sa.MetaData(),
                        *(
                            sa.Column(c["name"], c["type"], nullable=c["nullable"])
                            for c in reflected
                        ),
                        schema=schema,
                    )
                except sa.exc.NoSuchTableError:
                    raise SourceObjectMissing(
                        f"source '{self.name}': table '{obj}' does not exist "
                        "(dropped or renamed?); nothing was synced"
                    ) from None
                except sa.exc.DBAPIError as exc:
                    raise self._fail(exc, f"cannot read the definition of '{obj}'") from None
        return self._tables[obj]

    def describe(self, obj: str) -> list[Column]:
        self._tables.pop(obj, None)  # always look again: the schema may have changed
        table = self._table(obj)
        return [logical_column(c.name, c.type, bool(c.nullable), self.dialect) for c in table.c]

    def count_nulls(self, obj: str, column: str) -> int:
        table = self._table(obj)
        query = sa.select(sa.func.count()).select_from(table).where(table.c[column].is_(None))
        with self._connect() as conn:
            return int(conn.execute(query).scalar_one())

    def read_horizon(self) -> ReadHorizon:
        """The start of the oldest transaction open on this database now (PostgreSQL).

        Every client session's open transaction counts, not only those that have written yet:
        one may stamp a row with its start time long after it began. Other roles' sessions show
        no `xact_start` without pg_read_all_stats, so then the horizon is not claimed at all.
        """
        if self.dialect != "postgresql":
            return ReadHorizon(None, reason=f"not available for {self.dialect} sources")
        with self._connect() as conn:
            try:
                sees_all, at, local_at = conn.exec_driver_sql(_HORIZON_SQL).one()
            except sa.exc.DBAPIError as exc:
                raise self._fail(exc, "cannot read the open transactions") from None
        if not sees_all:
            return ReadHorizon(
                None,
                reason="the role cannot see other sessions' transactions"
                " (grant it pg_read_all_stats)",
            )
        return ReadHorizon(at.astimezone(UTC), local_at)

    # -- reconciliation checksums -----------------------------------------------------------

    def _checksum_select(
        self, conn: sa.Connection, obj: str, keys: Sequence[Column], cursor: Column | None,
        below: CursorValue | None,
    ) -> tuple[sa.Table, ChecksumSql, list[Any]]:  # fmt: skip
        if self.dialect == "sqlite":
            _register_sqlite_functions(conn)
        table = self._table(obj)
        sql = checksum_sql(
            self.dialect, self.engine.dialect.identifier_preparer.quote, keys, cursor
        )
        where = []
        if below is not None and cursor is not None:
            where.append(table.c[cursor.name] < self._driver_value(below))
        return table, sql, where

    def key_checksums(
        self, obj: str, keys: Sequence[Column], cursor: Column | None, below: CursorValue | None
    ) -> dict[str, tuple[int, int]]:
        """{bucket: (rows, sum of row hashes)} over the rows with cursor below `below`, computed
        by the database with the same canonical text and hash as the warehouse's."""
        with self._connect() as conn:
            table, sql, where = self._checksum_select(conn, obj, keys, cursor, below)
            bucket = sa.literal_column(sql.bucket)
            query = (
                sa.select(bucket, sa.func.count(), sa.func.sum(sa.literal_column(sql.row_hash)))
                .select_from(table)
                .where(*where)
                .group_by(bucket)
            )
            try:
                rows = conn.execute(query).all()
            except sa.exc.DBAPIError as exc:
                raise self._fail(exc, f"checksumming '{obj}' failed") from None
        return {str(b): (int(n), int(h)) for b, n, h in rows}

    def key_rows(
        self, obj: str, keys: Sequence[Column], cursor: Column | None, bucket: str,
        *, below: CursorValue | None, limit: int = 20_000,
    ) -> list[tuple[str, str]]:  # fmt: skip
        """Key and cursor text of the rows of one bucket, to name the keys that differ."""
        with self._connect() as conn:
            table, sql, where = self._checksum_select(conn, obj, keys, cursor, below)
            key_text = sa.literal_column(sql.key_text)
            query = (
                sa.select(key_text, sa.literal_column(sql.cursor_text))
                .select_from(table)
                .where(*where, sa.literal_column(sql.bucket) == bucket)
                .order_by(key_text)
                .limit(limit)
            )
            try:
                rows = conn.execute(query).all()
            except sa.exc.DBAPIError as exc:
                raise self._fail(exc, f"reading keys of '{obj}' failed") from None
        return [(str(k), str(c)) for k, c in rows]

    # -- reading ------------------------------------------------------------------------------

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        schema = arrow_schema(list(request.columns))
        if self.dialect == "postgresql":
            batches = self._read_postgres(request, schema)
        else:
            batches = self._read_sqlalchemy(request, schema)
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _read_sqlalchemy(self, request: ReadRequest, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        table = self._table(request.object)
        selected = []
        for column in request.columns:
            col = table.c[column.name]
            if _needs_text_cast(col.type, column):
                col = (
                    sa.type_coerce(col, sa.String)
                    if column.type != "string"
                    else sa.cast(col, sa.String)
                )
            selected.append(col.label(column.name))
        query = sa.select(*selected)
        if request.cursor is not None:
            cursor_col = table.c[request.cursor]
            if request.lower is not None:
                query = query.where(cursor_col >= self._driver_value(request.lower))
            if request.upper is not None:
                query = query.where(cursor_col < self._driver_value(request.upper))
        with self._connect() as conn:
            try:
                result = conn.execution_options(
                    stream_results=True, yield_per=self.batch_rows
                ).execute(query)
                while rows := result.fetchmany(self.batch_rows):
                    yield _rows_to_batch(rows, schema)
            except sa.exc.DBAPIError as exc:
                raise self._fail(exc, f"reading '{request.object}' failed") from None

    def _driver_value(self, value: CursorValue) -> CursorValue:
        # MySQL and SQLite hold naive UTC wall times; compare them with naive UTC values.
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def _read_postgres(self, request: ReadRequest, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        table = self._table(request.object)
        quote = self.engine.dialect.identifier_preparer.quote
        exprs = []
        # A CDC snapshot reads what the change stream receives as text as text too, and
        # parses it the same way: both render every value identically.
        as_text = {c.name for c in request.columns if c.type in TEXT_PARSED and self.snapshot}
        for column in request.columns:
            ident = quote(column.name)
            sa_type = table.c[column.name].type
            if column.name in as_text:
                exprs.append(f"{ident}::text AS {ident}")
            elif isinstance(sa_type, postgresql.ARRAY):
                exprs.append(f"to_json({ident})::text AS {ident}")
            elif _needs_text_cast(sa_type, column):
                exprs.append(f"{ident}::text AS {ident}")
            else:
                exprs.append(ident)
        schema_name, table_name = split_object(request.object)
        source = (
            quote(table_name)
            if schema_name is None
            else f"{quote(schema_name)}.{quote(table_name)}"
        )
        where = []
        if request.cursor is not None:
            if request.lower is not None:
                where.append(f"{quote(request.cursor)} >= {pg_literal(request.lower)}")
            if request.upper is not None:
                where.append(f"{quote(request.cursor)} < {pg_literal(request.upper)}")
        sql = f"SELECT {', '.join(exprs)} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # The low-level ADBC API: its DB-API layer imports pyarrow.dataset and pandas (~0.5 s).
        try:
            database = adbc_driver_postgresql.connect(libpq_url(self.url))
        except Exception as exc:  # ADBC raises its own error classes
            raise self._fail(exc, "cannot connect") from None
        connection = statement = None
        try:
            connection = adbc_driver_manager.AdbcConnection(database)
            if self.snapshot is not None:
                _import_snapshot(connection, self.snapshot)
            statement = adbc_driver_manager.AdbcStatement(connection)
            statement.set_options(
                **{
                    adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(
                        self.batch_bytes
                    )
                }
            )
            statement.set_sql_query(sql)
            handle, _ = statement.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            for batch in reader:
                if as_text:
                    batch = self._parse_text(request, batch, schema)
                yield conform_batch(batch, schema)
        except SyncError:
            raise
        except Exception as exc:
            raise self._fail(exc, f"reading '{request.object}' failed") from None
        finally:
            for handle_ in (statement, connection, database):
                if handle_ is not None:
                    try:
                        handle_.close()
                    except Exception:
                        pass  # closing after a failure must not hide the failure

    def _parse_text(
        self, request: ReadRequest, batch: pa.RecordBatch, schema: pa.Schema
    ) -> pa.RecordBatch:
        warn = self.warn
        say = None if warn is None else (lambda m: warn(f"table '{request.object}': {m}"))
        arrays = [
            to_arrow(c, array, say) if pa.types.is_string(array.type) else array
            for c, array in zip(request.columns, batch.columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class ChecksumSql:
    """The expressions of a reconciliation over one source table (see Warehouse's
    `checksum_parts_sql`, which the warehouse side uses and these must render identically)."""

    bucket: str
    row_hash: str
    key_text: str
    cursor_text: str


def canonical_text(dialect: str, ref: str, column: Column) -> str:
    """A source column's value as the text every database renders alike (warehouses' own
    `canonical_text_sql`): integers in decimal, times as epoch microseconds, dates ISO."""
    kind = column.type
    if dialect == "postgresql":
        if kind in ("timestamp", "timestamptz"):
            return f"CAST(CAST(extract(epoch FROM {ref}) * 1000000 AS BIGINT) AS TEXT)"
        if kind == "date":
            return f"to_char({ref}, 'YYYY-MM-DD')"
        return f"CAST({ref} AS TEXT)"
    if dialect in ("mysql", "mariadb"):
        if kind in ("timestamp", "timestamptz"):
            return f"CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {ref}) AS CHAR)"
        if kind == "uuid":
            return f"LOWER({ref})"
        return f"CAST({ref} AS CHAR)"
    # SQLite keeps times and dates as the text the application wrote: parse them in Python.
    if kind in ("timestamp", "timestamptz"):
        return f"dw_epoch_us({ref})"
    if kind == "date":
        return f"substr({ref}, 1, 10)"
    if kind == "uuid":
        return f"lower({ref})"
    return f"CAST({ref} AS TEXT)"


def checksum_sql(
    dialect: str, quote: Callable[[str], str], keys: Sequence[Column], cursor: Column | None
) -> ChecksumSql:
    mysql_ = dialect in ("mysql", "mariadb")

    def concat(parts: list[str]) -> str:
        return f"CONCAT({', '.join(parts)})" if mysql_ else " || ".join(parts)

    def text(column: Column) -> str:
        return f"coalesce({canonical_text(dialect, quote(column.name), column)}, '')"

    key_parts: list[str] = []
    for column in keys:
        key_parts += [text(column), "'|'"]
    key_text = concat(key_parts[:-1])
    row_text = concat([*key_parts[:-1], "'|'", text(cursor)]) if cursor is not None else key_text
    md5 = "dw_md5" if dialect == "sqlite" else "md5"

    def head(text_sql: str, digits: int) -> str:
        return f"substr({md5}({text_sql}), 1, {digits})"

    if dialect == "postgresql":
        row_hash = f"CAST(CAST('x' || {head(row_text, 8)} AS BIT(32)) AS BIGINT)"
    elif mysql_:
        row_hash = f"CAST(CONV({head(row_text, 8)}, 16, 10) AS UNSIGNED)"
    else:
        row_hash = f"dw_hex_int({head(row_text, 8)})"
    cursor_text = text(cursor) if cursor is not None else "''"
    return ChecksumSql(head(key_text, BUCKET_DIGITS), row_hash, key_text, cursor_text)


def _register_sqlite_functions(conn: sa.Connection) -> None:
    raw = conn.connection.driver_connection
    raw.create_function(  # type: ignore[union-attr]
        "dw_md5", 1, lambda v: None if v is None else hashlib.md5(str(v).encode()).hexdigest(),
        deterministic=True,
    )  # fmt: skip
    raw.create_function("dw_hex_int", 1, lambda v: int(v, 16), deterministic=True)  # type: ignore[union-attr]
    raw.create_function("dw_epoch_us", 1, _epoch_us, deterministic=True)  # type: ignore[union-attr]


def _epoch_us(value: str | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive times are UTC, as the sync reads them
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _import_snapshot(connection: adbc_driver_manager.AdbcConnection, snapshot: str) -> None:
    connection.set_autocommit(False)
    # The walsender's text settings, so values read as text match the change stream's.
    settings = [f"SET LOCAL {name} = {pg_literal(v)}" for name, v in SESSION_SETTINGS.items()]
    for sql in (
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        f"SET TRANSACTION SNAPSHOT {pg_literal(snapshot)}",
        *settings,
    ):
        statement = adbc_driver_manager.AdbcStatement(connection)
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()


def pg_literal(value: CursorValue) -> str:
    """A typed PostgreSQL literal for a cursor bound (values come from typed state, never text)."""
    if isinstance(value, bool):
        raise TypeError("boolean cursors are not supported")
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo is not None else "timestamp"
        return f"'{value.isoformat()}'::{kind}"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    return "'" + str(value).replace("'", "''") + "'"


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a driver's batch to the declared types; refuse values that would lose precision."""
    arrays = []
    for field, array in zip(schema, batch.columns, strict=True):
        if isinstance(array.type, pa.ExtensionType) or hasattr(array, "storage"):
            array = array.storage
        if array.type != field.type:
            try:
                array = array.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataConversionError(
                    f"column '{field.name}': source values do not fit {field.type}: {exc}"
                ) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _rows_to_batch(rows: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for i, field in enumerate(schema):
        values = [row[i] for row in rows]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataConversionError(
                f"column '{field.name}': source values do not fit {field.type}: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
