"""BigQuery as the warehouse: Parquet load jobs into stage tables, one script job per load unit.

BigQuery has no interactive transaction to hold open while a sync reads its source, and no
DDL on permanent tables inside one. So a load unit here is *buffered*:

- rows go to BigQuery by load jobs of Parquet (batches written to a local file, never
  streaming inserts) into stage tables, which the unit creates, fills and drops itself;
- DDL (CREATE, ALTER ADD COLUMN) runs at once, outside the transaction, as BigQuery requires;
- reads run at once against committed data and the unit's own stage tables;
- DML on live tables (the vocabulary's MERGE / INSERT / DELETE, the state row, the log line)
  is buffered and sent at `commit` as ONE script job `BEGIN TRANSACTION; ...; COMMIT
  TRANSACTION;`: rows, state and log line commit together or not at all.

The stream "lock" (BigQuery has no advisory locks) is a compare-and-set inside that script:
`lock_stream` notes the state row's `updated_at` as the unit saw it, and the script fails (ERROR()),
rolling back everything, unless the row still holds that value. Two syncs of one stream that
started from the same state can therefore not both commit; two whose scripts overlap are also
refused by BigQuery itself (concurrent transactions mutating one table: the later is aborted).
The loser fails with a message saying so, and its rerun starts from the winner's state.

A table the unit itself created (a stage, a full refresh's new table, a stream's first target)
is filled at once, outside the transaction: nobody reads it before the commit that records it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from dw_pipelines.sync.errors import SyncError, WarehouseUnreachable
from dw_pipelines.sync.redact import redact
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.spec import DeclarationError, TableLayout
from dw_pipelines.sync.state import SyncLogLine
from dw_pipelines.sync.urls import BigQueryUrl, parse_bigquery_url
from dw_pipelines.sync.warehouses.base import (
    STATE_SCHEMA,
    STATE_TABLE,
    SYNC_LOG_TABLE,
    SYNCED_AT,
    MergeCounts,
    StreamState,
    Warehouse,
)

if TYPE_CHECKING:
    from google.cloud import bigquery

_TYPES = {
    "boolean": "BOOL",
    "int16": "INT64",
    "int32": "INT64",
    "int64": "INT64",
    "float32": "FLOAT64",
    "float64": "FLOAT64",
    "decimal": "NUMERIC",
    "string": "STRING",
    "json": "JSON",
    "uuid": "STRING",
    "date": "DATE",
    "time": "TIME",
    # Naive source timestamps are read as UTC: BigQuery's TIMESTAMP is an instant, in µs.
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP",
    "binary": "BYTES",
}
# Stage tables outlive a killed run only this long (BigQuery drops them itself).
STAGE_EXPIRY_HOURS = 24
_DML = re.compile(r"^\s*(INSERT\s+INTO|DELETE\s+FROM|UPDATE|MERGE\s+INTO)\s+(\S+)", re.I)
_PARAM = re.compile(r"\$(\d+)")
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# The error text the commit script's compare-and-set fails with.
CONCURRENT_SYNC_MARK = "dw_concurrent_sync"


class BigQueryError(SyncError):
    """BigQuery refused a job; the message carries its reason and location."""


class ConcurrentSync(SyncError):
    """Another sync of the same stream committed after this one read the stream's state."""


@dataclass
class JobStats:
    """What BigQuery billed the jobs of this connection for (for materialization metadata)."""

    bytes_processed: int = 0
    bytes_billed: int = 0
    slot_ms: int = 0
    jobs: int = 0


@dataclass
class _Unit:
    """The open load unit: buffered DML, the tables it created, what reads must see."""

    statements: list[tuple[str, list[Any]]] = field(default_factory=list)
    fresh: set[str] = field(default_factory=set)  # created by this unit: written at once
    drop_after: list[str] = field(default_factory=list)
    shadow: dict[str, str] = field(default_factory=dict)  # live table -> table holding its rows
    delta: dict[str, int] = field(default_factory=dict)  # live table -> rows added by buffered DML
    seen: dict[str, datetime | None] = field(default_factory=dict)  # stream -> updated_at read


def decimal_type(precision: int | None, scale: int | None) -> str:
    """NUMERIC where it holds the declared precision and scale, BIGNUMERIC beyond."""
    if precision is None:
        return "BIGNUMERIC"
    s = scale or 0
    if s <= 9 and precision - s <= 29:
        return f"NUMERIC({precision}, {s})"
    if s <= 38 and precision - s <= 38:
        return f"BIGNUMERIC({precision}, {s})"
    raise BigQueryError(
        f"a DECIMAL({precision}, {s}) column does not fit BigQuery's BIGNUMERIC"
        " (at most 38 digits after and 38 before the point)"
    )


def column_type(column: Column) -> str:
    """A column's BigQuery type in DDL."""
    if column.type == "decimal":
        return decimal_type(column.precision, column.scale)
    return _TYPES[column.type]


def arrow_load_type(column: Column) -> pa.DataType:
    """The Arrow type a column is written to Parquet with, so the load job maps it exactly."""
    t = column.type
    if t in ("int16", "int32", "int64"):
        return pa.int64()
    if t in ("float32", "float64"):
        return pa.float64()
    if t == "decimal":
        if column.precision is None:
            return pa.decimal256(76, 38)
        s = column.scale or 0
        return (
            pa.decimal128(column.precision, s)
            if column.precision <= 38
            else pa.decimal256(column.precision, s)
        )
    if t in ("timestamp", "timestamptz"):
        return pa.timestamp("us", tz="UTC")
    simple = {"boolean": pa.bool_(), "date": pa.date32(), "time": pa.time64("us"),
              "binary": pa.binary()}  # fmt: skip
    return simple.get(t, pa.string())  # string, uuid, json (JSON loads as its text)


# The types BigQuery clusters on (FLOAT64, BYTES, JSON and TIME it does not).
CLUSTERABLE = ("BOOL", "INT64", "NUMERIC", "BIGNUMERIC", "STRING", "DATE", "TIMESTAMP")


def schema_field(column: Column) -> bigquery.SchemaField:
    """A column as the API's field: the same type `column_type` writes in DDL."""
    from google.cloud import bigquery

    kind = column_type(column)
    name, _, digits = kind.partition("(")
    precision, scale = (int(d) for d in digits.rstrip(")").split(",")) if digits else (None, None)
    return bigquery.SchemaField(column.name, name, precision=precision, scale=scale)


def table_layout(
    table: bigquery.Table, columns: Sequence[Column], layout: TableLayout, stream: str
) -> None:
    """Set `layout`'s time partitioning and clustering on `table`, or raise DeclarationError
    naming the field when a column is missing or of a type BigQuery refuses there."""
    from google.cloud import bigquery

    kinds = {c.name: column_type(c).partition("(")[0] for c in columns}
    if layout.partition_by is not None:
        kind = kinds.get(layout.partition_by)
        field_name = "bigquery.partition_by.field"
        if kind is None:
            raise DeclarationError(
                stream, field_name, f"column {layout.partition_by!r} is not in the table"
            )
        if kind not in ("DATE", "TIMESTAMP"):
            raise DeclarationError(
                stream, field_name,
                f"column {layout.partition_by!r} is {kind}; time partitions need DATE or TIMESTAMP",
            )  # fmt: skip
        if kind == "DATE" and layout.granularity == "hour":
            raise DeclarationError(
                stream, "bigquery.partition_by.granularity",
                f"column {layout.partition_by!r} is a DATE: partition it by day, month or year",
            )  # fmt: skip
        table.time_partitioning = bigquery.TimePartitioning(
            type_=layout.granularity.upper(), field=layout.partition_by
        )
    for name in layout.cluster_by:
        if kinds.get(name) not in CLUSTERABLE:
            what = f"is {kinds[name]}" if name in kinds else "is not in the table"
            raise DeclarationError(
                stream, "bigquery.cluster_by", f"column {name!r} {what}; BigQuery clusters on"
                f" {', '.join(CLUSTERABLE)}",
            )  # fmt: skip
    if layout.cluster_by:
        table.clustering_fields = list(layout.cluster_by)


def job_id(run: str, stream: str, step: int, kind: str) -> str:
    """`dw_<run>_<stream>_<step>_<kind>` in BigQuery's job id alphabet (letters, digits, `_`,
    `-`; at most 1,024): the same step of the same run always gets the same id, so BigQuery
    refuses a second submission of it (409) instead of running it twice."""
    safe = _JOB_ID_UNSAFE.sub("_", stream)[:200]
    return _JOB_ID_UNSAFE.sub("_", f"dw_{run}")[:800] + f"_{safe}_{step}_{kind}"


def bigquery_param(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    from google.cloud import bigquery

    kind = "STRING"
    if isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, Decimal):
        kind = "BIGNUMERIC"
    elif isinstance(value, datetime):
        kind = "TIMESTAMP"
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        kind = "DATE"
    elif isinstance(value, time):
        kind = "TIME"
    elif isinstance(value, bytes):
        kind = "BYTES"
    return bigquery.ScalarQueryParameter(name, kind, value)


def named_params(sql: str, params: Sequence[Any], prefix: str = "p") -> tuple[str, list[Any]]:
    """`$n` placeholders as BigQuery's `@<prefix>n`, and the parameters they name."""
    used = sorted({int(n) for n in _PARAM.findall(sql)})
    text = _PARAM.sub(lambda m: f"@{prefix}{m.group(1)}", sql)
    return text, [bigquery_param(f"{prefix}{n}", params[n - 1]) for n in used]


def preview_count_sql(sql: str) -> str:
    """A SELECT counting the rows a vocabulary INSERT/DELETE/UPDATE will touch, run before it is
    buffered (the unit's counts are known before its commit)."""
    text = sql.strip()
    if m := re.match(r"INSERT INTO \S+ \([^)]*\) (SELECT .*)$", text, re.S):
        return f"SELECT count(*) FROM ({m.group(1)})"
    if m := re.match(r"DELETE FROM (\S+(?: \w+)?) WHERE (.*)$", text, re.S):
        return f"SELECT count(*) FROM {m.group(1)} WHERE {m.group(2)}"
    if m := re.match(r"UPDATE (\S+(?: \w+)?) SET .*? FROM (\S+ \w+) WHERE (.*)$", text, re.S):
        return f"SELECT count(*) FROM {m.group(1)}, {m.group(2)} WHERE {m.group(3)}"
    if m := re.match(r"UPDATE (\S+(?: \w+)?) SET .*? WHERE (.*)$", text, re.S):
        return f"SELECT count(*) FROM {m.group(1)} WHERE {m.group(2)}"
    raise BigQueryError(f"cannot count the rows of this statement before it runs: {text[:60]}")


def sql_literal(value: Any) -> str:
    """A value as a typed BigQuery literal."""
    import base64

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return f"BIGNUMERIC {string_literal(str(value))}"
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return f"TIMESTAMP {string_literal(aware.astimezone(UTC).isoformat())}"
    if isinstance(value, date):
        return f"DATE {string_literal(value.isoformat())}"
    if isinstance(value, time):
        return f"TIME {string_literal(value.isoformat())}"
    if isinstance(value, bytes):
        return f"FROM_BASE64({string_literal(base64.b64encode(value).decode())})"
    return string_literal(str(value))


def inline_params(sql: str, values: Sequence[Any]) -> str:
    """`$n` placeholders replaced by their values as literals (scripts get no parameters: the
    emulator binds none inside one)."""
    return _PARAM.sub(lambda m: sql_literal(values[int(m.group(1)) - 1]), sql)


def commit_script(
    state_table: str,
    seen: dict[str, datetime | None],
    statements: Sequence[tuple[str, Sequence[Any]]],
) -> str:
    """The one script a load unit commits with: first the compare-and-set of each stream's state
    row (the row must still be as the unit read it, or the script fails with
    CONCURRENT_SYNC_MARK and BigQuery rolls the whole transaction back), then the buffered DML.

    `SELECT IF(<moved>, ERROR(...), 0)` rather than `IF ... THEN RAISE`: both abort the script
    on BigQuery; the emulator answers RAISE with a 500 (which the client retries), ERROR with a
    400 carrying the message."""
    checks = []
    for stream_id, at in seen.items():
        same_id = f"stream_id = {string_literal(stream_id)}"
        if at is None:  # the unit saw no state row: nobody may have written one since
            moved = f"EXISTS (SELECT 1 FROM {state_table} WHERE {same_id})"
        else:
            stamp = string_literal(at.astimezone(UTC).isoformat())
            moved = (
                f"NOT EXISTS (SELECT 1 FROM {state_table} WHERE {same_id}"
                f" AND updated_at = TIMESTAMP {stamp})"
            )
        checks.append(f"SELECT IF({moved}, ERROR('{CONCURRENT_SYNC_MARK}'), 0)")
    body = [*checks, *(inline_params(sql, values) for sql, values in statements)]
    return "BEGIN TRANSACTION;\n" + ";\n".join(body) + ";\nCOMMIT TRANSACTION;"


def _position(order: list[str], name: str) -> int:
    return order.index(name) if name in order else len(order)


def string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def error_text(exc: BaseException) -> str:
    """BigQuery's reason, location and message of a failed job or request."""
    errors = getattr(exc, "errors", None) or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    reason = first.get("reason") or type(exc).__name__
    location = first.get("location")
    message = first.get("message") or getattr(exc, "message", None) or str(exc)
    where = f" at {location}" if location else ""
    return f"BigQuery {reason}{where}: {str(message).splitlines()[0]}"


class BigQueryWarehouse(Warehouse):
    dialect = "bigquery"
    type_names = _TYPES

    def __init__(
        self, url: str, *, credentials_file: str | None = None, run_id: str | None = None
    ) -> None:
        self.url = url
        self.target: BigQueryUrl = parse_bigquery_url(url)
        self.catalog = self.target.project
        # Job ids are derived from the run, the stream and the step: see `_job_id`.
        # The Dagster run's id (its first block) and this connection's own: two connections of
        # one run number their steps apart, and never wait for each other's jobs.
        self.run_id = f"{(run_id or 'run').split('-')[0]}_{uuid.uuid4().hex[:12]}"
        self.stats = JobStats()
        self._unit: _Unit | None = None
        self._step = 0
        self._stream = "none"
        self._columns: dict[str, list[Column]] = {}  # tables this connection created -> columns
        self._layouts: dict[str, TableLayout] = {}  # ... and their partitioning and clustering
        try:
            self.client = self._connect(credentials_file)
        except Exception as exc:
            raise WarehouseUnreachable(
                f"cannot open BigQuery project {self.target.project}:"
                f" {redact(error_text(exc), url, secrets=(credentials_file,))}"
            ) from None

    def _calls(self) -> dict[str, Any]:
        """`retry` and `timeout` for one client call: bounded by the URL's `timeout`, if any."""
        from google.cloud import bigquery

        t = self.target.timeout_s
        if t is None:
            return {}
        return {"retry": bigquery.DEFAULT_RETRY.with_deadline(t), "timeout": t}

    def _connect(self, credentials_file: str | None) -> bigquery.Client:
        from dw_pipelines.sync.bigquery_client import bigquery_client, credentials_for

        return bigquery_client(self.target, credentials_for(self.target, credentials_file))

    # -- names ----------------------------------------------------------------------------------

    @staticmethod
    def quote(identifier: str) -> str:
        return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def dataset(self, schema: str) -> str:
        prefix = self.target.dataset_prefix
        return f"{prefix}_{schema}" if prefix else schema

    def table(self, schema: str, name: str) -> str:  # type: ignore[override]
        return f"{self.quote(self.dataset(schema))}.{self.quote(name)}"

    def _ref(self, table: str) -> bigquery.TableReference:
        from google.cloud import bigquery

        dataset, name = re.findall(r"`((?:[^`\\]|\\.)*)`", table)
        ds = bigquery.DatasetReference(self.target.project, dataset)
        return bigquery.TableReference(ds, name)

    # -- jobs -----------------------------------------------------------------------------------

    def _job_id(self, kind: str) -> str:
        self._step += 1
        return job_id(self.run_id, self._stream, self._step, kind)

    def _submit(self, job_id: str, start: Callable[[], Any]) -> Any:
        """Start a job under its derived id. A 409 (the id exists) is this step's own earlier
        submission, answered after the client sent it again (a lost answer, a timeout): wait for
        that job instead of running the step twice."""
        from google.api_core import exceptions

        try:
            return start()
        except exceptions.Conflict:
            try:
                return self.client.get_job(job_id, **self._calls())
            except Exception as exc:
                raise BigQueryError(redact(error_text(exc), self.url)) from None
        except Exception as exc:
            raise BigQueryError(redact(error_text(exc), self.url)) from None

    def _wait(self, job: Any) -> Any:
        try:
            result = job.result(**self._calls())
        except Exception as exc:
            raise BigQueryError(redact(error_text(exc), self.url)) from None
        self.stats.jobs += 1
        self.stats.bytes_processed += int(getattr(job, "total_bytes_processed", 0) or 0)
        self.stats.bytes_billed += int(getattr(job, "total_bytes_billed", 0) or 0)
        self.stats.slot_ms += int(getattr(job, "slot_millis", 0) or 0)
        return result

    def usage(self) -> dict[str, int]:
        return {
            "bigquery_bytes_processed": self.stats.bytes_processed,
            "bigquery_bytes_billed": self.stats.bytes_billed,
            "bigquery_slot_ms": self.stats.slot_ms,
            "bigquery_jobs": self.stats.jobs,
        }

    def _query(self, sql: str, params: Sequence[Any] = (), kind: str = "query") -> Any:
        from google.cloud import bigquery

        text, query_params = named_params(sql, params)
        config = bigquery.QueryJobConfig(query_parameters=query_params)
        job_id = self._job_id(kind)
        # job_retry=None: a job with a fixed id cannot be resubmitted under that id.
        job = self._submit(
            job_id,
            lambda: self.client.query(
                text, job_config=config, job_id=job_id, job_retry=None, **self._calls()
            ),
        )
        return job, self._wait(job)

    # -- primitives -----------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._buffered(sql):
            self._unit.statements.append((sql, list(params)))  # type: ignore[union-attr]
            return
        self._query(sql, params)

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self._buffered(sql):
            n = int(self.scalar(preview_count_sql(sql), params))
            self._unit.statements.append((sql, list(params)))  # type: ignore[union-attr]
            target = self._dml_target(sql) or ""
            if sql.lstrip().upper().startswith("INSERT"):
                self._add_delta(target, n)
            elif sql.lstrip().upper().startswith("DELETE"):
                self._add_delta(target, -n)
            return n
        job, _ = self._query(sql, params, "dml")
        return int(job.num_dml_affected_rows or 0)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._unit is not None:
            for live, holder in self._unit.shadow.items():
                sql = sql.replace(live, holder)
        _, result = self._query(sql, params)
        return [tuple(row.values()) for row in result]

    def _dml_target(self, sql: str) -> str | None:
        m = _DML.match(sql)
        return m.group(2) if m else None

    def _buffered(self, sql: str) -> bool:
        """DML on a live table inside a unit waits for the commit script."""
        target = self._dml_target(sql)
        return self._unit is not None and target is not None and target not in self._unit.fresh

    def _add_delta(self, table: str, n: int) -> None:
        if self._unit is not None:
            self._unit.delta[table] = self._unit.delta.get(table, 0) + n

    def begin(self) -> None:
        self._unit = _Unit()

    def commit(self) -> None:
        unit, self._unit = self._unit, None
        if unit is None:
            return
        try:
            if unit.statements or unit.seen:
                self._run_script(unit)
        finally:
            self._drop_all(unit.drop_after)

    def rollback(self) -> None:
        unit, self._unit = self._unit, None
        if unit is not None:
            # What the unit created is dropped with it, as a transaction would have.
            self._drop_all([*unit.drop_after, *unit.fresh])

    def _drop_all(self, tables: Sequence[str]) -> None:
        for table in dict.fromkeys(tables):
            with contextlib.suppress(Exception):
                self.client.delete_table(self._ref(table), not_found_ok=True, **self._calls())

    def _run_script(self, unit: _Unit) -> None:
        from google.cloud import bigquery

        script = commit_script(self.table(STATE_SCHEMA, STATE_TABLE), unit.seen, unit.statements)
        job_id = self._job_id("commit")
        try:
            job = self._submit(
                job_id,
                lambda: self.client.query(
                    script,
                    job_config=bigquery.QueryJobConfig(),
                    job_id=job_id,
                    job_retry=None,
                    **self._calls(),
                ),
            )
            self._wait(job)
        except Exception as exc:
            text = str(exc) if isinstance(exc, BigQueryError) else error_text(exc)
            if CONCURRENT_SYNC_MARK in text:
                raise ConcurrentSync(
                    f"another sync of {', '.join(unit.seen)} committed after this one read its"
                    " state; nothing of this one was applied: rerun it"
                ) from None
            if isinstance(exc, BigQueryError):
                raise
            raise BigQueryError(redact(text, self.url)) from None

    def _load(
        self,
        table: str,
        columns: Sequence[Column],
        reader: pa.RecordBatchReader,
        synced_at: datetime | None,
    ) -> int:
        names = [c.name for c in columns]
        load_columns = [*columns, Column(SYNCED_AT, "timestamptz")] if synced_at else columns
        schema = pa.schema([pa.field(c.name, arrow_load_type(c)) for c in load_columns])
        has_json = any(c.type == "json" for c in columns)
        live = self._unit is not None and table not in self._unit.fresh
        # JSON travels as text; it, and any load into a live table, goes through a raw stage.
        raw = self._raw_stage(load_columns) if has_json or live else None
        if raw is None:
            schema = self._file_schema(table, schema)
        with tempfile.TemporaryDirectory(prefix="dw_bq_") as tmp:
            path = os.path.join(tmp, "rows.parquet")
            rows = 0
            with pq.ParquetWriter(path, schema) as writer:
                for batch in reader:
                    arrays = {n: batch.column(n) for n in names}
                    if synced_at:
                        arrays[SYNCED_AT] = pa.array([synced_at] * batch.num_rows)
                    ordered = [
                        arrays[f.name].cast(f.type)
                        if f.name in arrays
                        else pa.nulls(batch.num_rows, f.type)
                        for f in schema
                    ]
                    writer.write_batch(pa.RecordBatch.from_arrays(ordered, schema=schema))
                    rows += batch.num_rows
            if rows == 0:
                if raw:
                    self._drop_all([raw])
                return 0
            self._load_file(path, raw or table)
        if raw:
            parsed = [
                f"PARSE_JSON({self.quote(c.name)})" if c.type == "json" else self.quote(c.name)
                for c in load_columns
            ]
            all_names = ", ".join(self.quote(c.name) for c in load_columns)
            self.execute(f"INSERT INTO {table} ({all_names}) SELECT {', '.join(parsed)} FROM {raw}")
            self._add_delta(table, rows)
            self._drop_later(raw)
        return rows

    def _file_schema(self, table: str, schema: pa.Schema) -> pa.Schema:
        """A direct load's file: every column of the table, in the table's order, those the rows
        lack written as NULL. The emulator matches a Parquet file's columns to the table's by
        position and wants them all (a CDC table has `_dw_lsn` after `_dw_synced_at`, and soft
        deletes' `_dw_deleted_at`, which no load supplies)."""
        known = self._columns.get(table)
        if known is None:  # not created by this connection: its order, as reported
            order = list(self._schema_of(table) or {})
            return pa.schema(sorted(schema, key=lambda f: _position(order, f.name)))
        given = {f.name: f for f in schema}
        fields = [
            given.pop(c.name) if c.name in given else pa.field(c.name, arrow_load_type(c))
            for c in known
        ]
        return pa.schema([*fields, *given.values()])

    def _raw_stage(self, columns: Sequence[Column]) -> str:
        as_text = [Column(c.name, "string") if c.type == "json" else c for c in columns]
        return self.create_stage(self.stage_name("raw"), as_text)

    def _load_file(self, path: str, table: str) -> None:
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        job_id = self._job_id("load")
        with open(path, "rb") as handle:
            # No `size=`: a resumable upload, bounded in memory whatever the file's size.
            # The upload takes a timeout per request, no retry object.
            bounded = {"timeout": self.target.timeout_s} if self.target.timeout_s else {}
            job = self._submit(
                job_id,
                lambda: self.client.load_table_from_file(
                    handle, self._ref(table), job_config=config, job_id=job_id, **bounded
                ),
            )
        self._wait(job)

    def _drop_later(self, table: str) -> None:
        if self._unit is not None:
            self._unit.drop_after.append(table)
        else:
            self._drop_all([table])

    def create_stage(self, name: str, columns: Sequence[Column]) -> str:
        self.ensure_schema(STATE_SCHEMA)
        table = self.table(STATE_SCHEMA, name)
        self.execute(
            f"CREATE TABLE {table} ({self.column_defs(columns, synced_at=False)})"
            f" OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(),"
            f" INTERVAL {STAGE_EXPIRY_HOURS} HOUR))"
        )
        if self._unit is not None:
            self._unit.fresh.add(table)
        return table

    def create_table(
        self, table: str, columns: Sequence[Column], layout: TableLayout | None = None
    ) -> None:
        all_columns = [*columns, Column(SYNCED_AT, "timestamptz")]
        self._create(table, all_columns, layout)
        self._columns[table] = all_columns
        if layout is not None:
            self._layouts[table] = layout
        if self._unit is not None:
            self._unit.fresh.add(table)

    def _create(self, table: str, columns: Sequence[Column], layout: TableLayout | None) -> None:
        """CREATE TABLE by DDL, or by tables.insert with a layout: partitioning and clustering
        then travel as the API's own fields. (The emulator ignores DDL's `PARTITION BY
        <expression>` and `CLUSTER BY`, and its tables.insert fails on BIGNUMERIC: each path
        is the one it gets right.)"""
        from google.cloud import bigquery

        if layout is None:
            self.execute(f"CREATE TABLE {table} ({self.column_defs(columns, synced_at=False)})")
            return
        created = bigquery.Table(self._ref(table), schema=[schema_field(c) for c in columns])
        table_layout(created, columns, layout, self._stream)
        try:
            self.client.create_table(created, **self._calls())
        except Exception as exc:
            raise BigQueryError(redact(error_text(exc), self.url)) from None

    def add_column(self, table: str, column: Column) -> None:
        super().add_column(table, column)
        # `swap_in` creates the live table from these: a CDC table's `_dw_lsn` comes this way.
        if table in self._columns:
            self._columns[table].append(column)

    def drop_stage(self, table: str) -> None:
        # Buffered statements may still read it: it goes after the commit.
        self._drop_later(table)

    def lock_stream(self, stream_id: str) -> None:
        self._stream = stream_id
        seen = None
        if self.table_exists(STATE_SCHEMA, STATE_TABLE):
            seen = self.scalar(
                f"SELECT updated_at FROM {self.table(STATE_SCHEMA, STATE_TABLE)}"
                " WHERE stream_id = $1",
                [stream_id],
            )
        if self._unit is not None:
            self._unit.seen[stream_id] = seen

    def close(self) -> None:
        self.client.close()

    # -- DDL ------------------------------------------------------------------------------------

    def type_ddl(self, column: Column) -> str:
        return column_type(column)

    def ensure_schema(self, schema: str) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.target.project}.{self.dataset(schema)}")
        if self.target.location:
            # Not None: the emulator answers a null location with a 500 (BigQuery takes it as US).
            dataset.location = self.target.location
        try:
            self.client.create_dataset(dataset, exists_ok=True, **self._calls())
        except Exception as exc:
            raise BigQueryError(redact(error_text(exc), self.url)) from None

    def table_exists(self, schema: str, name: str) -> bool:
        return self._schema_of(self.table(schema, name)) is not None

    def column_exists(self, schema: str, name: str, column: str) -> bool:
        fields = self._schema_of(self.table(schema, name)) or {}
        return column in fields

    def _schema_of(self, table: str) -> dict[str, str] | None:
        from google.api_core import exceptions

        try:
            found = self.client.get_table(self._ref(table), **self._calls())
        except exceptions.NotFound:
            return None
        return {f.name: f.field_type for f in found.schema}

    def alter_column_type(self, table: str, column: Column) -> None:
        # BigQuery only widens in place (INT64 -> NUMERIC -> BIGNUMERIC, NUMERIC(p,s) wider).
        self.execute(
            f"ALTER TABLE {table} ALTER COLUMN {self.quote(column.name)}"
            f" SET DATA TYPE {self.type_ddl(column)}"
        )

    def ensure_state_table(self) -> None:
        self.ensure_schema(STATE_SCHEMA)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table(STATE_SCHEMA, STATE_TABLE)} ("
            "stream_id STRING NOT NULL, state STRING NOT NULL, updated_at TIMESTAMP NOT NULL)"
        )
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table(STATE_SCHEMA, SYNC_LOG_TABLE)} ("
            "stream_id STRING NOT NULL, finished_at TIMESTAMP NOT NULL, mode STRING NOT NULL,"
            " rows_read INT64, rows_inserted INT64, rows_updated INT64, rows_unchanged INT64,"
            " rows_deleted INT64, row_count INT64, cursor_before STRING, cursor_after STRING,"
            " window_text STRING)"
        )

    # -- the write vocabulary, BigQuery's way ---------------------------------------------------

    @classmethod
    def same_row_sql(cls, columns: Sequence[Column]) -> str:
        # JSON has no equality in BigQuery: compared as its canonical text.
        def ref(alias: str, c: Column) -> str:
            r = f"{alias}.{cls.quote(c.name)}"
            return f"TO_JSON_STRING({r})" if c.type == "json" else r

        return " AND ".join(f"{ref('t', c)} IS NOT DISTINCT FROM {ref('s', c)}" for c in columns)

    @classmethod
    def upsert_sql(
        cls, target: str, stage: str, columns: Sequence[Column], keys: Sequence[str],
        only: str | None = None,
    ) -> str:  # fmt: skip
        """One MERGE: $1 the sync time, $2 the `only` value (stage rows with it, when given)."""
        q = cls.quote
        source = f"(SELECT * FROM {stage} WHERE {q(only)} = $2)" if only else stage
        sets = ", ".join(f"{q(c.name)} = s.{q(c.name)}" for c in columns)
        names = ", ".join(q(c.name) for c in columns)
        values = ", ".join(f"s.{q(c.name)}" for c in columns)
        return (
            f"MERGE INTO {target} t USING {source} s ON {cls.same_key_sql(keys)}"
            f" WHEN MATCHED THEN UPDATE SET {sets}, {q(SYNCED_AT)} = $1"
            f" WHEN NOT MATCHED THEN INSERT ({names}, {q(SYNCED_AT)}) VALUES ({values}, $1)"
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
        q = self.quote
        same_key = self.same_key_sql(keys)
        skipped = 0
        # The stage is this unit's own: rows to leave alone are removed from it at once.
        if skip_unchanged:
            live = f" AND t.{q(live_column)} IS NULL" if live_column else ""
            skipped += self.count(
                f"DELETE FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t"
                f" WHERE {same_key} AND {self.same_row_sql(columns)}{live})"
            )
        if newer_column:
            newer = q(newer_column)
            skipped += self.count(
                f"DELETE FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t"
                f" WHERE {same_key} AND t.{newer} > s.{newer})"
            )
        only_where = f" AND s.{q(only[0])} = $1" if only else ""
        only_params = [only[1]] if only else []
        replaced = int(
            self.scalar(
                f"SELECT count(*) FROM {stage} s WHERE EXISTS"
                f" (SELECT 1 FROM {target} t WHERE {same_key}){only_where}",
                only_params,
            )
        )
        inserted = int(
            self.scalar(f"SELECT count(*) FROM {stage} s WHERE TRUE{only_where}", only_params)
        )
        sql = self.upsert_sql(target, stage, columns, keys, only[0] if only else None)
        self.execute(sql, [synced_at, *only_params])
        self._add_delta(target, inserted - replaced)
        return MergeCounts(skipped, replaced, inserted)

    def swap_in(self, schema: str, new_name: str, name: str) -> None:
        """Full refresh: the live table's rows replaced by the new table's in the commit
        script (DELETE + INSERT: BigQuery allows no DROP/RENAME of a table in a transaction).
        The live table is created or given the new columns first, outside it."""
        new, target = self.table(schema, new_name), self.table(schema, name)
        live_schema = self._schema_of(target)
        declared = self._columns.get(new)
        if declared is not None:
            # From the declared columns, not from what get_table reports of the new table: the
            # emulator reports NUMERIC(p, s) and BIGNUMERIC alike as NUMERIC, without p and s.
            if live_schema is None:
                self._create(target, declared, self._layouts.get(new))
            else:
                for column in declared:
                    if column.name not in live_schema:
                        self.add_column(target, column)
            new_names = [c.name for c in declared]
        else:
            new_schema = self._schema_of(new) or {}
            if live_schema is None:
                self.client.create_table(
                    self._bq_table(target, self.client.get_table(self._ref(new)).schema),
                    **self._calls(),
                )
            else:
                for column_name, kind in new_schema.items():
                    if column_name not in live_schema:
                        self.execute(
                            f"ALTER TABLE {target} ADD COLUMN {self.quote(column_name)} {kind}"
                        )
            new_names = list(new_schema)
        names = ", ".join(self.quote(c) for c in new_names)
        self.execute(f"DELETE FROM {target} WHERE TRUE")
        self.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {new}")
        if self._unit is not None:
            self._unit.shadow[target] = new
        self._drop_later(new)

    def _bq_table(self, table: str, schema: Any) -> bigquery.Table:
        from google.cloud import bigquery

        return bigquery.Table(self._ref(table), schema=schema)

    def row_count(self, table: str) -> int:
        committed = int(self.scalar(f"SELECT count(*) FROM {table}"))
        if self._unit is None or table in self._unit.shadow:
            return committed
        return committed + self._unit.delta.get(table, 0)

    # -- state ----------------------------------------------------------------------------------

    def write_state(self, stream_id: str, state: StreamState, now: datetime) -> None:
        self.execute(
            f"MERGE INTO {self.table(STATE_SCHEMA, STATE_TABLE)} t"
            " USING (SELECT $1 AS stream_id, $2 AS state, $3 AS updated_at) s"
            " ON t.stream_id = s.stream_id"
            " WHEN MATCHED THEN UPDATE SET state = s.state, updated_at = s.updated_at"
            " WHEN NOT MATCHED THEN INSERT (stream_id, state, updated_at)"
            " VALUES (s.stream_id, s.state, s.updated_at)",
            [stream_id, state.to_json(), now],
        )

    _LOG_TYPES = {"stream_id": "STRING", "mode": "STRING", "cursor_before": "STRING",
                  "cursor_after": "STRING", "window_text": "STRING"}  # fmt: skip

    def log_sync(self, line: SyncLogLine, finished_at: datetime) -> None:
        from dataclasses import fields

        names = [f.name for f in fields(line)]
        values = [getattr(line, n) for n in names]
        # A NULL parameter is typed STRING: each value is cast to its column's type.
        exprs = ["$1"] + [
            f"CAST(${i} AS {self._LOG_TYPES.get(n, 'INT64')})" for i, n in enumerate(names, 2)
        ]
        self.execute(
            f"INSERT INTO {self.table(STATE_SCHEMA, SYNC_LOG_TABLE)}"
            f" (finished_at, {', '.join(names)}) SELECT {', '.join(exprs)}",
            [finished_at, *values],
        )
