"""Salesforce as a source: records -> Arrow batches, through REST query/queryMore or Bulk 2.0.

Rows with `lower <= cursor < upper` are read one page at a time (REST pages of up to 2000
records in `ORDER BY <cursor>, Id` order, or Bulk 2.0 CSV pages of `bulk_page_records`), so an
object never sits whole in memory. Deletes come from `queryAll ... WHERE IsDeleted = true` and
are applied by the engine in the same warehouse transaction as the upserts.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from dw_pipelines.sync.errors import SourceUnreachable, SyncError
from dw_pipelines.sync.schema import Column, arrow_schema
from dw_pipelines.sync.sources.base import ReadRequest, SourceAbilities
from dw_pipelines.sync.sources.salesforce.bulk import BulkQuery
from dw_pipelines.sync.sources.salesforce.client import (
    ApiUsage,
    BulkJobFailed,
    BulkUnsupported,
    SalesforceAuth,
    SalesforceClient,
    SalesforceQueryError,
    SalesforceSettings,
)
from dw_pipelines.sync.sources.salesforce.types import (
    CURSOR_FALLBACKS,
    ceil_ms,
    csv_texts,
    json_texts,
    logical_column,
    soql_literal,
    to_arrow,
)

T = TypeVar("T")


class SalesforceSource:
    """One Salesforce org. Logs in lazily; `usage` counts the API calls made."""

    abilities: ClassVar[SourceAbilities] = SourceAbilities(
        default_cursor=True, reports_deletes=True, lists_all_keys=True, run_metadata=True
    )

    def __init__(
        self,
        auth: SalesforceAuth,
        settings: SalesforceSettings | None = None,
        name: str = "salesforce",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth, self.settings, self.name = auth, settings or SalesforceSettings(), name
        self.usage = ApiUsage()
        self._sleep = sleep
        self._client = SalesforceClient(auth, self.settings, name, self.usage, sleep)
        self._described: dict[str, dict[str, Any]] = {}

    # -- the Source protocol ------------------------------------------------------------------

    def describe(self, obj: str) -> list[Column]:
        fields = self._describe(obj)["fields"]
        return [c for c in (logical_column(f) for f in fields) if c is not None]

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        columns = list(request.columns)
        where = self._where(request)
        bulk = self._use_bulk(request.object, where)
        return pa.RecordBatchReader.from_batches(
            arrow_schema(columns), self._read(request, columns, where, bulk)
        )

    def _read(
        self, request: ReadRequest, columns: list[Column], where: str, bulk: bool
    ) -> Iterator[pa.RecordBatch]:
        # REST pages come in cursor order; Bulk 2.0 jobs go unordered, since ORDER BY makes
        # them slower and the engine takes the new cursor from what it loaded, not the order.
        obj, order = request.object, "" if bulk else f" ORDER BY {request.cursor or 'Id'}"
        if request.cursor and not bulk:
            order += ", Id"
        fetched = list(columns)
        while True:
            soql = f"SELECT {', '.join(c.name for c in fetched)} FROM {obj}{where}{order}"
            if bulk:
                batches = self._bulk_batches(obj, soql, fetched)
            else:
                batches = self._rest_batches(obj, soql, fetched, include_deleted=False)
            try:
                first = next(batches, None)
            except SalesforceQueryError as exc:
                # A field removed after describe(): under a policy that keeps dropped columns
                # (evolve) it is read as NULL from now on instead of failing the sync.
                gone = next((c for c in fetched if c.name == exc.field_name), None)
                if not request.tolerate_missing_columns or gone is None or gone.name == "Id":
                    raise
                fetched.remove(gone)
                continue
            break
        for batch in itertools.chain([first] if first is not None else [], batches):
            if len(fetched) == len(columns):
                yield batch
            else:
                yield pa.RecordBatch.from_arrays(
                    [
                        batch.column(c.name)
                        if c in fetched
                        else pa.nulls(batch.num_rows, c.arrow_type())
                        for c in columns
                    ],
                    schema=arrow_schema(columns),
                )

    def deleted_keys(self, request: ReadRequest) -> pa.RecordBatchReader:
        """Keys (request.columns) of records deleted with `lower <= cursor < upper`.

        Deleting a record stamps its SystemModstamp, so deletes since the stream's cursor
        (minus its lookback) are exactly those with the cursor in range and IsDeleted = true.
        """
        columns = list(request.columns)
        where = self._where(request, "IsDeleted = true")
        soql = f"SELECT {', '.join(c.name for c in columns)} FROM {request.object}{where}"
        batches = self._rest_batches(request.object, soql, columns, include_deleted=True)
        return pa.RecordBatchReader.from_batches(arrow_schema(columns), batches)

    def all_keys(self, request: ReadRequest) -> pa.RecordBatchReader:
        """Every live record's key (request.columns), for a key-diff reconciliation; through
        Bulk 2.0 above the threshold, like any read."""
        return self.read(ReadRequest(request.object, request.columns))

    def default_cursor(self, obj: str) -> str | None:
        names = {f["name"] for f in self._describe(obj)["fields"]}
        return next((n for n in CURSOR_FALLBACKS if n in names), None)

    def count_nulls(self, obj: str, column: str) -> int:
        result = self._client.call(
            lambda sf: sf.query(f"SELECT COUNT() FROM {obj} WHERE {column} = null")
        )
        return int(result["totalSize"])

    def count(self, obj: str, where: str = "") -> int:
        result = self._client.call(lambda sf: sf.query(f"SELECT COUNT() FROM {obj}{where}"), obj)
        return int(result["totalSize"])

    def close(self) -> None:
        self._client.close()

    def run_metadata(self) -> dict[str, object]:
        """API usage of this run, for the materialization (also when it failed)."""
        metadata: dict[str, object] = {
            "api_calls": self.usage.calls,
            "bulk_jobs": self.usage.bulk_jobs,
            "api_retries": self.usage.retries,
            "logins": self.usage.logins,
        }
        if self.usage.used is not None and self.usage.limit:
            metadata["api_daily_used"] = self.usage.used
            metadata["api_daily_limit"] = self.usage.limit
        return metadata

    # -- reading ------------------------------------------------------------------------------

    def _where(self, request: ReadRequest, *extra: str) -> str:
        conditions = list(extra)
        if request.cursor and request.lower is not None:
            conditions.append(f"{request.cursor} >= {soql_literal(request.lower)}")
        if request.cursor and request.upper is not None:
            conditions.append(f"{request.cursor} < {soql_literal(ceil_ms(request.upper))}")
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def _use_bulk(self, obj: str, where: str) -> bool:
        if self.settings.bulk_threshold <= 0:
            return True
        return self.count(obj, where) >= self.settings.bulk_threshold

    def _rest_batches(
        self, obj: str, soql: str, columns: list[Column], include_deleted: bool
    ) -> Iterator[pa.RecordBatch]:
        call = self._client.call
        page = call(lambda sf: sf.query(soql, include_deleted=include_deleted), obj)
        pending: list[dict[str, Any]] = []
        while True:
            pending.extend(page["records"])
            if len(pending) >= self.settings.batch_rows:
                yield to_arrow(columns, json_texts(columns, pending))
                pending = []
            if page.get("done", True):
                break
            next_url = page["nextRecordsUrl"]
            page = call(lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True), obj)
        if pending:
            yield to_arrow(columns, json_texts(columns, pending))

    def _bulk_batches(self, obj: str, soql: str, columns: list[Column]) -> Iterator[pa.RecordBatch]:
        jobs = BulkQuery(self._client, obj)
        try:
            job = jobs.create(soql)
        except BulkUnsupported:
            yield from self._rest_batches(obj, soql, columns, include_deleted=False)
            return
        self.usage.add(bulk_jobs=1)
        job_id = job["id"]
        info = self._wait_for_job(jobs, job_id)
        expected = int(info.get("numberRecordsProcessed") or 0)
        delivered = 0
        # The next page downloads (and parses) while the warehouse loads this one: at most two
        # pages are in memory, and the transfer time is no longer added to the load time.
        ahead = read_ahead(
            self._bulk_pages(obj, job_id, columns),
            timeout=self.settings.call_seconds(),
            what=f"Salesforce '{self.name}': the next page of Bulk 2.0 job {job_id} on {obj}",
        )
        for batch in ahead:
            delivered += batch.num_rows
            for offset in range(0, batch.num_rows, self.settings.batch_rows):
                yield batch.slice(offset, self.settings.batch_rows)
        if delivered != expected:
            raise BulkJobFailed(
                f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {obj} processed {expected}"
                f" records but delivered {delivered}; nothing was loaded"
            )
        # Every row is read: the org need not keep a copy of the object for the 7 days it
        # would keep the results. A failed job stays, for whoever investigates it.
        try:
            jobs.delete(job_id)
        except SyncError:
            pass  # the rows are read; a job left behind is only clutter

    def _bulk_pages(self, obj: str, job_id: str, columns: list[Column]) -> Iterator[pa.RecordBatch]:
        # Runs in the read-ahead thread: with its own client, so its own HTTP session, which
        # it alone uses and closes.
        client = self._client.fork()
        jobs = BulkQuery(client, obj)
        try:
            yield from self._checked_pages(jobs, job_id, columns)
        finally:
            client.close()

    def _checked_pages(
        self, jobs: BulkQuery, job_id: str, columns: list[Column]
    ) -> Iterator[pa.RecordBatch]:
        for page in jobs.pages(job_id, self.settings.bulk_page_records):
            batch = to_arrow(columns, csv_texts(columns, page.csv))
            if batch.num_rows != page.number_of_records:
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {jobs.obj} delivered"
                    f" {batch.num_rows} rows in a page whose Sforce-NumberOfRecords says"
                    f" {page.number_of_records}; nothing was loaded"
                )
            yield batch

    def _wait_for_job(self, jobs: BulkQuery, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.bulk_timeout_seconds
        while True:
            info = jobs.info(job_id)
            state = info["state"]
            if state == "JobComplete":
                return info
            if state in ("Failed", "Aborted"):
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {jobs.obj} ended"
                    f" {state}: {self._client.scrub(str(info.get('errorMessage') or 'no message'))};"
                    " nothing was loaded"
                )
            if time.monotonic() >= deadline:
                try:
                    jobs.abort(job_id)
                except SyncError:
                    pass  # the timeout is what the user needs to hear about
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {jobs.obj} was still"
                    f" {state} after {self.settings.bulk_timeout_seconds:g}s; it was aborted and"
                    " nothing was loaded"
                )
            self._sleep(self.settings.bulk_poll_seconds)

    def _describe(self, obj: str) -> dict[str, Any]:
        if obj not in self._described:
            self._described[obj] = self._client.call(lambda sf: getattr(sf, obj).describe(), obj)
        return self._described[obj]


def read_ahead(items: Iterator[T], timeout: float, what: str = "the next item") -> Iterator[T]:
    """`items`, produced one step ahead in a thread; its errors re-raised here, in order.

    Neither side waits forever: the consumer gives up (SourceUnreachable) when the next item
    takes longer than `timeout`, and the producer stops at its next step once the consumer has
    gone (closed the generator, or raised)."""
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slot.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over("item", item):
                    return
            hand_over("end", None)
        except BaseException as exc:  # handed to the consumer, who raises it
            hand_over("error", exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="salesforce-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, value = slot.get(timeout=timeout)
            except queue.Empty:
                raise SourceUnreachable(f"{what} did not come within {timeout:g}s") from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
