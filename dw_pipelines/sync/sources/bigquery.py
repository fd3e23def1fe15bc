"""BigQuery as a source: tables and queries, read as Arrow.

A table is read through the Storage Read API (gRPC, Arrow record batches, the cursor range as
the session's row restriction, only the selected columns), so nothing is billed as query bytes
and no result is staged; a query (a source's `queries:` entry) is run as a job and its result
read by REST pages of `batch_rows`. Either way the engine gets bounded batches, never a table.

BigQuery's nested columns have no logical type in the engine: a RECORD arrives as a JSON object
and a REPEATED column as a JSON list (keys and order as in BigQuery; NUMERIC values inside as
exact JSON numbers, times as `2026-11-01 14:00:00+00`). A table partitioned by ingestion time also
offers its `_PARTITIONTIME` pseudo-column, as column `partition_time` (BigQuery reserves names
starting `_PARTITION`, so it could not land under its own name in a BigQuery warehouse).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from dw_pipelines.sync.errors import (
    BadUrl,
    SourceObjectMissing,
    SourceUnreachable,
    SyncError,
)
from dw_pipelines.sync.redact import redact
from dw_pipelines.sync.schema import Column, arrow_schema, decimal_column
from dw_pipelines.sync.sources.base import ReadRequest, SourceAbilities
from dw_pipelines.sync.state import CursorValue
from dw_pipelines.sync.urls import BigQueryUrl, MalformedUrl, parse_bigquery_url

if TYPE_CHECKING:
    from google.cloud import bigquery

PARTITION_TIME = "partition_time"
"""The column `_PARTITIONTIME` of an ingestion-time partitioned table lands as."""
_SCALARS = {
    "INTEGER": "int64",
    "INT64": "int64",
    "FLOAT": "float64",
    "FLOAT64": "float64",
    "BOOLEAN": "boolean",
    "BOOL": "boolean",
    "STRING": "string",
    "BYTES": "binary",
    "TIMESTAMP": "timestamptz",
    "DATETIME": "timestamp",
    "DATE": "date",
    "TIME": "time",
    "JSON": "json",
}


def logical_column(field: bigquery.SchemaField) -> Column:
    """A BigQuery column in the engine's types; GEOGRAPHY, INTERVAL and RANGE as their text."""
    nullable = field.mode != "REQUIRED"
    kind = field.field_type
    if field.mode == "REPEATED" or kind in ("RECORD", "STRUCT"):
        return Column(field.name, "json", nullable)
    if kind in ("NUMERIC", "DECIMAL"):
        # BigQuery's NUMERIC is exactly DECIMAL(38, 9) unless declared narrower.
        return decimal_column(field.name, field.precision or 38, field.scale or 9, nullable)
    if kind in ("BIGNUMERIC", "BIGDECIMAL"):
        return decimal_column(field.name, field.precision or 76, field.scale or 38, nullable)
    return Column(field.name, _SCALARS.get(kind, "string"), nullable)  # type: ignore[arg-type]


class JsonRenderer:
    """Struct and list columns as JSON text, rendered by an in-memory DuckDB (`to_json`): ten
    times the speed of Python's json on the billing export's records (measured in the README),
    NUMERIC values as exact JSON numbers, times as `2026-11-01 14:00:00+00` (UTC)."""

    def __init__(self) -> None:
        import duckdb

        self._db = duckdb.connect(config={"threads": 1, "memory_limit": "256MB"})
        self._db.execute("SET TimeZone = 'UTC'")

    def render(self, batch: pa.RecordBatch, names: Sequence[str]) -> dict[str, pa.Array]:
        nested = pa.Table.from_batches([batch.select(list(names))])
        columns = ", ".join(f'to_json("{n.replace(chr(34), chr(34) * 2)}")::VARCHAR' for n in names)
        self._db.register("dw_nested", nested)
        try:
            out = self._db.sql(f"SELECT {columns} FROM dw_nested").to_arrow_table()
        finally:
            self._db.unregister("dw_nested")
        return {n: out.column(i).combine_chunks() for i, n in enumerate(names)}

    def close(self) -> None:
        self._db.close()


def conform(
    batch: pa.RecordBatch, columns: Sequence[Column], renderer: JsonRenderer
) -> pa.RecordBatch:
    """A batch as BigQuery's client gave it, typed exactly as the engine's columns say."""
    nested = [
        c.name
        for c in columns
        if c.type == "json"
        and (pa.types.is_struct(t := batch.schema.field(c.name).type) or pa.types.is_list(t))
    ]
    rendered = renderer.render(batch, nested) if nested else {}
    arrays = []
    for column in columns:
        array = rendered.get(column.name, batch.column(column.name))
        wanted = column.arrow_type()
        arrays.append(array if array.type == wanted else array.cast(wanted))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(list(columns)))


def literal(value: CursorValue, column: Column) -> str:
    """A cursor bound as a BigQuery literal, for a Storage Read session's row restriction
    (which takes no parameters)."""
    if isinstance(value, datetime):
        if column.type == "timestamptz":
            moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            return f"TIMESTAMP '{moment.isoformat()}'"
        return f"DATETIME '{value.replace(tzinfo=None).isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | Decimal):
        return str(value) if column.type != "decimal" else f"NUMERIC '{value}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def split_source_url(url: str) -> tuple[BigQueryUrl, str | None]:
    """`bigquery://project?location=&endpoint=&timeout=&storage_endpoint=`: the client's target
    and the emulator's Storage Read (gRPC) endpoint, if named."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise MalformedUrl("a source's URL names the project only (tables say their dataset)")
    query = parse_qs(parts.query)
    storage = query.pop("storage_endpoint", [None])[0]
    rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return parse_bigquery_url(rest), storage


class BigQuerySource:
    """One BigQuery project: the one jobs and read sessions run (and are billed) in; tables
    are named `dataset.table` in it, or `project.dataset.table` elsewhere."""

    abilities: ClassVar[SourceAbilities] = SourceAbilities(run_metadata=True)

    def __init__(
        self,
        url: str,
        *,
        name: str = "bigquery",
        credentials_file: str | None = None,
        queries: dict[str, str] | None = None,
        batch_rows: int = 50_000,
        storage_api: bool = True,
        url_env: str | None = None,
    ) -> None:
        self.name, self.url, self.batch_rows = name, url, batch_rows
        self.queries = dict(queries or {})
        self._secrets = (url, credentials_file)
        try:
            self.target, self.storage_endpoint = split_source_url(url)
        except MalformedUrl as exc:
            where = f"environment variable {url_env}" if url_env else "its URL"
            raise BadUrl(
                f"source '{self.name}': the URL in {where} is malformed: {exc}. Expected"
                " bigquery://project[?location=EU]"
            ) from None
        from dw_pipelines.sync.bigquery_client import (
            bigquery_client,
            credentials_for,
            storage_read_client,
        )

        try:
            credentials = credentials_for(self.target, credentials_file)
            self.client = bigquery_client(self.target, credentials)
            self._storage = (
                storage_read_client(self.target, credentials, self.storage_endpoint)
                if storage_api
                else None
            )
        except Exception as exc:
            raise self._unreachable(exc, "cannot open the project") from None
        self.jobs = 0
        self.bytes_processed = 0
        self.read_apis: set[str] = set()
        self._schemas: dict[str, list[bigquery.SchemaField]] = {}
        self._pseudo_objects: set[str] = set()
        self._json = JsonRenderer()

    # -- the Source protocol ------------------------------------------------------------------

    def describe(self, obj: str) -> list[Column]:
        return [logical_column(f) for f in self._fields(obj)]

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        columns = list(request.columns)
        uses_pseudo = any(c.name == PARTITION_TIME for c in columns) and self._pseudo(
            request.object
        )
        is_table = request.object not in self.queries
        if is_table:
            self._fields(request.object)  # fails now, naming the object, if it is gone
        if is_table and self._storage is not None and not uses_pseudo:
            batches = self._storage_batches(request, columns)
        else:
            batches = self._query_batches(request, columns)
        return pa.RecordBatchReader.from_batches(arrow_schema(columns), batches)

    def count_nulls(self, obj: str, column: str) -> int:
        expr = "_PARTITIONTIME" if column == PARTITION_TIME and self._pseudo(obj) else quote(column)
        rows = self._run(f"SELECT COUNTIF({expr} IS NULL) AS n FROM {self._from(obj)}", [])
        return int(next(iter(rows))[0])

    def close(self) -> None:
        self.client.close()
        self._json.close()
        if self._storage is not None:
            self._storage.transport.close()

    def run_metadata(self) -> dict[str, object]:
        return {
            "bigquery_jobs": self.jobs,
            "bigquery_bytes_processed": self.bytes_processed,
            "read_api": ", ".join(sorted(self.read_apis)) or "none",
        }

    # -- objects ------------------------------------------------------------------------------

    def _table_id(self, obj: str) -> tuple[str, str, str]:
        parts = obj.split(".")
        if len(parts) == 2:
            parts = [self.target.project, *parts]
        if len(parts) != 3 or not all(parts):
            raise SourceObjectMissing(
                f"source '{self.name}': '{obj}' is neither a query the source declares nor a"
                " table named dataset.table (or project.dataset.table)"
            )
        return parts[0], parts[1], parts[2]

    def _from(self, obj: str) -> str:
        if obj in self.queries:
            return f"({self.queries[obj]})"
        return ".".join(quote(p) for p in self._table_id(obj))

    def _fields(self, obj: str) -> list[bigquery.SchemaField]:
        if obj in self._schemas:
            return self._schemas[obj]
        from google.api_core import exceptions
        from google.cloud import bigquery

        try:
            if obj in self.queries:
                config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
                fields = list(self.client.query(self.queries[obj], job_config=config).schema)
            else:
                table = self.client.get_table(".".join(self._table_id(obj)), **self._calls())
                fields = list(table.schema)
                partitioning = table.time_partitioning
                ingestion_time = partitioning is not None and partitioning.field is None
                if ingestion_time and all(f.name != PARTITION_TIME for f in fields):
                    fields.append(bigquery.SchemaField(PARTITION_TIME, "TIMESTAMP"))
                    self._pseudo_objects.add(obj)
        except exceptions.NotFound:
            raise SourceObjectMissing(
                f"source '{self.name}': table '{obj}' does not exist in project"
                f" {self.target.project} (or the credentials may not see it)"
            ) from None
        except SyncError:
            raise
        except Exception as exc:
            raise self._unreachable(exc, f"cannot describe '{obj}'") from None
        self._schemas[obj] = fields
        return fields

    def _pseudo(self, obj: str) -> bool:
        """Whether `partition_time` is the ingestion-time pseudo-column (not a real column)."""
        self._fields(obj)
        return obj in self._pseudo_objects

    # -- reading ------------------------------------------------------------------------------

    def _storage_batches(
        self, request: ReadRequest, columns: list[Column]
    ) -> Iterator[pa.RecordBatch]:
        from google.cloud.bigquery_storage_v1 import types

        assert self._storage is not None
        project, dataset, table = self._table_id(request.object)
        restriction = " AND ".join(self._bounds(request, columns, inline=True)[0])
        session = types.ReadSession(
            table=f"projects/{project}/datasets/{dataset}/tables/{table}",
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(
                selected_fields=[c.name for c in columns], row_restriction=restriction
            ),
        )
        self.read_apis.add("storage")
        try:
            # One stream: batches arrive one at a time, in the order the server sends them.
            opened = self._storage.create_read_session(
                parent=f"projects/{self.target.project}", read_session=session, max_stream_count=1
            )
            for stream in opened.streams:
                for page in self._storage.read_rows(stream.name).rows(opened).pages:
                    batch = page.to_arrow()
                    if batch.num_rows:
                        yield conform(batch, columns, self._json)
        except SyncError:
            raise
        except Exception as exc:
            raise self._unreachable(exc, f"cannot read '{request.object}'") from None

    def _query_batches(
        self, request: ReadRequest, columns: list[Column]
    ) -> Iterator[pa.RecordBatch]:
        pseudo = request.object not in self.queries and self._pseudo(request.object)

        select = ", ".join(
            f"_PARTITIONTIME AS {quote(c.name)}"
            if pseudo and c.name == PARTITION_TIME
            else quote(c.name)
            for c in columns
        )
        where, params = self._bounds(request, columns, inline=False)
        sql = f"SELECT {select} FROM {self._from(request.object)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        self.read_apis.add("rest")
        rows = self._run(sql, params, page_size=self.batch_rows)
        try:
            for batch in rows.to_arrow_iterable():
                if batch.num_rows:
                    yield conform(batch, columns, self._json)
        except SyncError:
            raise
        except Exception as exc:
            raise self._unreachable(exc, f"cannot read '{request.object}'") from None

    def _bounds(
        self, request: ReadRequest, columns: list[Column], *, inline: bool
    ) -> tuple[list[str], list[Any]]:
        """`cursor >= lower AND cursor < upper` as literals (Storage Read) or parameters."""
        if request.cursor is None:
            return [], []
        from dw_pipelines.sync.warehouses.bigquery import bigquery_param

        cursor = next(c for c in columns if c.name == request.cursor)
        expr = quote(cursor.name)
        if cursor.name == PARTITION_TIME and self._pseudo(request.object):
            expr = "_PARTITIONTIME"
        where: list[str] = []
        params: list[Any] = []
        for op, value, label in ((">=", request.lower, "lower"), ("<", request.upper, "upper")):
            if value is None:
                continue
            if inline:
                where.append(f"{expr} {op} {literal(value, cursor)}")
            else:
                if isinstance(value, datetime) and cursor.type == "timestamp":
                    value = value.replace(tzinfo=None)
                param = bigquery_param(label, value)
                if cursor.type == "timestamp":
                    from google.cloud import bigquery

                    param = bigquery.ScalarQueryParameter(label, "DATETIME", value)
                params.append(param)
                where.append(f"{expr} {op} @{label}")
        return where, params

    # -- jobs ---------------------------------------------------------------------------------

    def _calls(self) -> dict[str, Any]:
        from google.cloud import bigquery

        t = self.target.timeout_s
        return {} if t is None else {"retry": bigquery.DEFAULT_RETRY.with_deadline(t), "timeout": t}

    def _run(self, sql: str, params: list[Any], page_size: int | None = None) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=params)
        try:
            job = self.client.query(sql, job_config=config, **self._calls())
            rows = job.result(page_size=page_size, **self._calls())
        except Exception as exc:
            raise self._unreachable(exc, "a query failed") from None
        self.jobs += 1
        self.bytes_processed += int(getattr(job, "total_bytes_processed", 0) or 0)
        return rows

    def _unreachable(self, exc: BaseException, what: str) -> SyncError:
        from dw_pipelines.sync.warehouses.bigquery import error_text

        return SourceUnreachable(
            f"source '{self.name}' (BigQuery project {self.target.project}): {what}:"
            f" {redact(error_text(exc), self._secrets[0], secrets=(self._secrets[1],))}"
        )
