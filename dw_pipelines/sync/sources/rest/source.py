"""A JSON REST API as a source: each declared endpoint is an object read page by page.

Records are selected from each page, filtered to the request's cursor range, and handed to the
engine in Arrow batches of `batch_rows`: an endpoint never sits whole in memory. The engine's
load unit does the rest: a run that fails on any page (or exhausts its request budget) commits
nothing and moves no cursor, and the next run asks again from the last committed cursor.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dw_pipelines.sync.errors import CursorNullError, SourceObjectMissing
from dw_pipelines.sync.schema import Column, arrow_schema
from dw_pipelines.sync.sources.base import ReadRequest, SourceAbilities
from dw_pipelines.sync.sources.rest.client import Response, RestApiError, RestClient, Secrets
from dw_pipelines.sync.sources.rest.config import (
    Changes,
    CursorPaging,
    Deletes,
    Endpoint,
    Incremental,
    KeysetPaging,
    LinkHeaderPaging,
    NextUrlPaging,
    OffsetPaging,
    PageNumberPaging,
    ParentBatch,
    RestApi,
    TokenPaging,
)
from dw_pipelines.sync.sources.rest.records import (
    BatchBuilder,
    convert,
    endpoint_columns,
    path_get,
    to_batch,
    to_datetime,
)
from dw_pipelines.sync.state import CursorValue

_PARENT_FIELD = re.compile(r"\{parent\.([A-Za-z0-9_.]+)\}")
Records = list[Mapping[str, Any]]


class RestSource:
    """One REST API, opened with its secrets; `client.usage` counts the requests made."""

    # Deletes are reported for every endpoint: one without a `deletes:` listing reports none.
    abilities: ClassVar[SourceAbilities] = SourceAbilities(run_metadata=True, reports_deletes=True)

    def __init__(
        self,
        name: str,
        api: RestApi,
        secrets: Secrets | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name, self.api = name, api
        self.client = RestClient(name, api, secrets or Secrets(), sleep)

    # -- the Source protocol ------------------------------------------------------------------

    def describe(self, obj: str) -> list[Column]:
        endpoint = self._endpoint(obj)
        # A sample only types inferred and undeclared flattened columns: without those, reading
        # one (a whole batch of parents, for a batch read) would be requests for nothing.
        fixed = not endpoint.infer_columns and set(endpoint.flatten) <= set(endpoint.columns)
        sample = [] if fixed else next(self._records(obj, None), [])
        return endpoint_columns(endpoint, sample, f"{self.name}.{obj}")

    def read(self, request: ReadRequest) -> pa.RecordBatchReader:
        columns = list(request.columns)
        return pa.RecordBatchReader.from_batches(arrow_schema(columns), self._batches(request))

    def deleted_keys(self, request: ReadRequest) -> pa.RecordBatchReader:
        """Keys (request.columns) of the records the endpoint's `deletes:` listing reports
        deleted since the lower bound.

        The listing is filtered on the deletion's time (a Stripe event's `created`), not the
        record's cursor: everything deleted after the previous run read its rows is at or after
        its cursor, hence the bound; earlier deletions repeat as no-ops."""
        columns = list(request.columns)
        gone = self._endpoint(request.object).deletes
        return pa.RecordBatchReader.from_batches(
            arrow_schema(columns), self._deleted(columns, gone, request.lower) if gone else iter(())
        )

    def _deleted(
        self, columns: list[Column], gone: Deletes, lower: CursorValue | None
    ) -> Iterator[pa.RecordBatch]:
        for page in self._records(gone.endpoint, lower):
            if page:
                arrays = [
                    pa.array(
                        [convert(c, path_get(r, gone.keys[c.name])) for r in page], c.arrow_type()
                    )
                    for c in columns
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))

    def count_nulls(self, obj: str, column: str) -> int:
        # An API cannot count; a record without its cursor value fails the read instead.
        return 0

    def close(self) -> None:
        self.client.close()

    def run_metadata(self) -> dict[str, object]:
        usage = self.client.usage
        return {
            "api_requests": usage.requests,
            "api_retries": usage.retries,
            "api_token_fetches": usage.token_fetches,
            "api_throttle_waits": usage.throttle_waits,
        }

    # -- reading ------------------------------------------------------------------------------

    def _batches(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        endpoint = self._endpoint(request.object)
        columns = list(request.columns)
        cursor = next((c for c in columns if c.name == request.cursor), None)
        path = endpoint.flatten.get(request.cursor or "", request.cursor or "")
        # Changes are read before the list: a record listed after them is at least as new, so
        # it replaces its change. A first load (no lower bound) lists every record as it is.
        changes = endpoint.changes
        changed: dict[str, Mapping[str, Any]] = {}
        if changes is not None and cursor is not None and request.lower is not None:
            changed = self._changed(changes, request.lower)
        # Each page is taken into the batch as soon as it is parsed (see `BatchBuilder`).
        batch = BatchBuilder(columns, endpoint)
        for page in self._records(request.object, request.lower, request.cursor is not None):
            if changed and changes is not None:
                listed = []
                for record in page:
                    key = str(path_get(record, changes.key))
                    if key in changed:
                        changed[key] = record  # given with the changes, once
                    else:
                        listed.append(record)
                page = listed
            batch.add(page)
            if batch.rows >= self.api.batch_rows:
                yield self._within(request, cursor, batch.build())
        if batch.rows:
            yield self._within(request, cursor, batch.build())
        pending: list[Mapping[str, Any]] = []
        for record in changed.values():
            # Whatever its (immutable) cursor: below the lower bound is what changes are for.
            # At or past the upper bound, the next run lists it as it then is.
            assert cursor is not None
            value = convert(cursor, path_get(record, path))
            if value is not None and (request.upper is None or value < request.upper):
                pending.append(record)
            if len(pending) >= self.api.batch_rows:
                yield to_batch(columns, pending, endpoint)
                pending = []
        if pending:
            yield to_batch(columns, pending, endpoint)

    def _within(
        self, request: ReadRequest, cursor: Column | None, batch: pa.RecordBatch
    ) -> pa.RecordBatch:
        """The batch's rows in the request's cursor range, compared by Arrow a column at a time
        (a record's cursor as a Python value cost more than converting the whole record)."""
        if cursor is None:
            return batch
        values = batch.column(cursor.name)
        if values.null_count:
            first = pc.index(values.is_null(), True).as_py()
            key = batch.column("id")[first].as_py() if "id" in batch.schema.names else None
            raise CursorNullError(
                f"source '{self.name}', endpoint '{request.object}': a record has no value for"
                f" the cursor '{cursor.name}' (key {key!r}); an incremental sync would never"
                " read it"
            )
        keep = None
        if request.lower is not None:
            keep = pc.greater_equal(values, pa.scalar(request.lower, values.type))
        if request.upper is not None:
            below = pc.less(values, pa.scalar(request.upper, values.type))
            keep = below if keep is None else pc.and_(keep, below)
        if keep is None or keep.true_count == len(batch):
            return batch
        return batch.filter(keep)

    def _changed(self, changes: Changes, lower: CursorValue) -> dict[str, Mapping[str, Any]]:
        """The latest change of each record listed since the lower bound, by key.

        Held whole until the list is read: as many records as changed since the bound."""
        latest: dict[str, tuple[tuple[datetime, int], Mapping[str, Any]]] = {}
        position = 0
        for page in self._records(changes.endpoint, lower):
            for listed in page:
                record, moment = path_get(listed, changes.record), path_get(listed, changes.time)
                key = path_get(record, changes.key)
                if not isinstance(record, Mapping) or key is None or moment is None:
                    raise RestApiError(
                        f"source '{self.name}', endpoint '{changes.endpoint}': a listed change"
                        f" has no record at '{changes.record}' with '{changes.key}', or no"
                        f" '{changes.time}'"
                    )
                position += 1
                rank = (
                    to_datetime(moment),
                    -position if changes.order == "newest_first" else position,
                )
                held = latest.get(str(key))
                if held is None or rank > held[0]:
                    latest[str(key)] = (rank, record)
        return {key: record for key, (_, record) in latest.items()}

    def _records(
        self, obj: str, lower: CursorValue | None, incremental: bool = False
    ) -> Iterator[Records]:
        """Pages of records; a child endpoint's pages for every record of its parent."""
        endpoint = self._endpoint(obj)
        if isinstance(endpoint.paginator, KeysetPaging):
            yield from self._keyset_pages(obj, endpoint, endpoint.paginator, lower, incremental)
            return
        if endpoint.parent is None:
            yield from self._pages(obj, endpoint, endpoint.path, lower)
            return
        if endpoint.parent_batch is not None:
            yield from self._batch_pages(obj, endpoint, endpoint.parent_batch, lower)
            return
        for parent_page in self._records(endpoint.parent, None):
            for parent in parent_page:
                path = _PARENT_FIELD.sub(lambda m, p=parent: str(path_get(p, m[1])), endpoint.path)
                copied = {k: path_get(parent, v) for k, v in endpoint.parent_fields.items()}
                for page in self._pages(obj, endpoint, path, lower):
                    yield [{**r, **copied} for r in page] if copied else page

    def _batch_pages(
        self, obj: str, endpoint: Endpoint, batch: ParentBatch, lower: CursorValue | None
    ) -> Iterator[Records]:
        """Pages of a batch read: one per `batch.size` parents, then one per round of their
        results' next pages. Only one batch of parents is held at a time."""
        assert endpoint.parent is not None  # the declaration is refused without it
        parents: dict[str, Mapping[str, Any]] = {}
        for parent_page in self._records(endpoint.parent, None):
            for parent in parent_page:
                key = path_get(parent, batch.key)
                if key is None:
                    raise RestApiError(
                        f"source '{self.name}', endpoint '{obj}': a record of '{endpoint.parent}'"
                        f" has no '{batch.key}' to ask for"
                    )
                parents[str(key)] = parent
                if len(parents) >= batch.size:
                    yield from self._batch_read(obj, endpoint, batch, parents, lower)
                    parents = {}
        if parents:
            yield from self._batch_read(obj, endpoint, batch, parents, lower)

    def _batch_read(
        self,
        obj: str,
        endpoint: Endpoint,
        batch: ParentBatch,
        parents: Mapping[str, Mapping[str, Any]],
        lower: CursorValue | None,
    ) -> Iterator[Records]:
        params: dict[str, Any] = dict(endpoint.params)
        base = copy.deepcopy(endpoint.body) if endpoint.body is not None else {}
        if lower is not None and endpoint.incremental is not None:
            params, base = _with_bound(endpoint.incremental, lower, params, base)
        url = self.client.url(endpoint.path)
        asking: list[tuple[str, Any]] = [(key, None) for key in parents]
        while asking:
            inputs = [
                {batch.input: path_get(parents[key], batch.key)}
                | ({batch.next_param: token} if token is not None else {})
                for key, token in asking
            ]
            body = _put(copy.deepcopy(base or {}), batch.inputs, inputs)
            response = self.client.request(obj, endpoint.method, url, params, body)
            answer, results = self._listed(obj, endpoint, response, "result")
            self._check_batch_errors(obj, batch, answer)
            page: Records = []
            asking = []
            for result in results:
                key = str(path_get(result, batch.result_key))
                parent = parents.get(key)
                records = path_get(result, batch.result_records)
                if parent is None or not isinstance(records, list | None):
                    raise RestApiError(
                        f"source '{self.name}', endpoint '{obj}': a result answers no parent"
                        f" asked for at '{batch.result_key}' ({key!r}), or has no record list at"
                        f" '{batch.result_records}'"
                    )
                copied = {k: path_get(parent, v) for k, v in endpoint.parent_fields.items()}
                page.extend({**r, **copied} for r in records or ())
                token = path_get(result, batch.result_next) if batch.result_next else None
                if token:
                    asking.append((key, token))
            yield page

    def _check_batch_errors(self, obj: str, batch: ParentBatch, answer: Any) -> None:
        """Fails on a per-parent error that is not the API's way of saying "no records": that
        parent's records would be missing from the table, and the cursor would move past them."""
        if batch.errors is None:
            return
        errors = path_get(answer, batch.errors) if isinstance(answer, dict) else None
        for error in errors if isinstance(errors, list) else ():
            if not _says_no_records(error, batch.no_records):
                said = orjson.dumps(error).decode()
                raise RestApiError(
                    f"source '{self.name}', endpoint '{obj}': the batch read failed for a parent"
                    f" (under '{batch.errors}', not one of `no_records`): {said[:500]}"
                )

    def _pages(
        self, obj: str, endpoint: Endpoint, path: str, lower: CursorValue | None
    ) -> Iterator[Records]:
        params: dict[str, Any] = dict(endpoint.params)
        body = copy.deepcopy(endpoint.body) if endpoint.body is not None else None
        if lower is not None and endpoint.incremental is not None:
            params, body = _with_bound(endpoint.incremental, lower, params, body)
        paging = endpoint.paginator
        if isinstance(paging, PageNumberPaging):
            params[paging.param] = paging.start
            if paging.size_param:
                params[paging.size_param] = paging.size
        elif isinstance(paging, OffsetPaging):
            params |= {paging.param: 0, paging.limit_param: paging.limit}
        url = self.client.url(path)
        while True:
            response = self.client.request(obj, endpoint.method, url, params, body)
            data, records = self._listed(obj, endpoint, response)
            yield records
            if isinstance(paging, CursorPaging):
                if not records or not path_get(data, paging.has_more):
                    return
                params[paging.param] = path_get(records[-1], paging.from_record)
            elif isinstance(paging, TokenPaging):
                token = path_get(data, paging.from_body)
                if not token:
                    return
                if paging.location == "query":
                    params[paging.param] = token
                else:
                    body = {**(body or {}), paging.param: token}
            elif isinstance(paging, NextUrlPaging | LinkHeaderPaging):
                if isinstance(paging, NextUrlPaging):
                    following = path_get(data, paging.from_body)
                else:
                    following = response.links.get("next", {}).get("url")
                if not following:
                    return
                url, params = self._same_origin(obj, urljoin(response.url, following)), {}
            elif isinstance(paging, PageNumberPaging):
                if len(records) < paging.size:
                    return
                params[paging.param] += 1
            elif isinstance(paging, OffsetPaging):
                if len(records) < paging.limit:
                    return
                params[paging.param] += paging.limit
            else:
                return

    def _keyset_pages(
        self,
        obj: str,
        endpoint: Endpoint,
        paging: KeysetPaging,
        lower: CursorValue | None,
        incremental: bool,
    ) -> Iterator[Records]:
        """Pages of a query asked again from the last record's time (see `KeysetPaging`)."""
        assert endpoint.incremental is not None  # the declaration is refused without it
        url = self.client.url(endpoint.path)
        bound, token = lower, None
        at_bound: set[str] = set()  # keys read whose time is the bound's instant
        # A stream without a cursor (full refresh) must not leave out late changes: it keeps
        # the keys it gave instead, to skip a record read again.
        given: set[str] | None = None if incremental else set()
        cutoff: datetime | None = None
        while True:
            params: dict[str, Any] = dict(endpoint.params)
            body = copy.deepcopy(endpoint.body) if endpoint.body is not None else None
            if bound is not None:
                params, body = _with_bound(endpoint.incremental, bound, params, body)
            if token is not None:
                if paging.location == "query":
                    params[paging.param] = token
                else:
                    body = {**(body or {}), paging.param: token}
            response = self.client.request(obj, endpoint.method, url, params, body)
            if cutoff is None and incremental:
                cutoff = _server_time(response.headers.get("Date")) - timedelta(seconds=1)
            data, records = self._listed(obj, endpoint, response)
            fresh: Records = []
            for record in records:
                moment = self._keyset_time(obj, paging, record)
                if cutoff is not None and moment >= cutoff:
                    yield fresh  # the rest changed during this run: the next one reads them
                    return
                key = str(path_get(record, paging.key))
                if (moment == bound and key in at_bound) or (given is not None and key in given):
                    continue
                if given is not None:
                    given.add(key)
                fresh.append(record)
            yield fresh
            following = path_get(data, paging.from_body)
            if not records or not following:
                return
            newest = self._keyset_time(obj, paging, records[-1])
            keys = {
                str(path_get(r, paging.key))
                for r in records
                if self._keyset_time(obj, paging, r) == newest
            }
            if bound is None or newest > bound:
                bound, token, at_bound = newest, None, keys
            else:
                token = following  # a whole page in the bound's instant: on by offset
                at_bound |= keys

    def _listed(
        self, obj: str, endpoint: Endpoint, response: Response, what: str = "record"
    ) -> tuple[Any, list[Any]]:
        """The parsed body and the list its `records` path selects; a clear error if the body is
        not JSON or holds no list there. orjson parses about three times faster than json."""
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RestApiError(
                f"source '{self.name}', endpoint '{obj}': the response"
                f" ({response.headers.get('Content-Type') or 'no content type'}) is not JSON: {exc}"
            ) from None
        listed = path_get(data, endpoint.records)
        if not isinstance(listed, list):
            raise RestApiError(
                f"source '{self.name}', endpoint '{obj}': the response has no {what} list"
                f" at '{endpoint.records or '(the body)'}'"
            )
        return data, listed

    def _keyset_time(self, obj: str, paging: KeysetPaging, record: Mapping[str, Any]) -> datetime:
        value = path_get(record, paging.from_record)
        if value is None:
            raise CursorNullError(
                f"source '{self.name}', endpoint '{obj}': a record has no '{paging.from_record}'"
                f" to page by (key {path_get(record, paging.key)!r})"
            )
        return to_datetime(value)

    def _same_origin(self, obj: str, url: str) -> str:
        # Credentials go with every request: never to a host the API merely names.
        here, there = urlsplit(self.client.base_url), urlsplit(url)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            raise RestApiError(
                f"source '{self.name}', endpoint '{obj}': the next page is on another origin"
                f" ({there.scheme}://{there.netloc}); refusing to send credentials there"
            )
        return url

    def _endpoint(self, obj: str) -> Endpoint:
        try:
            return self.api.endpoints[obj]
        except KeyError:
            raise SourceObjectMissing(
                f"source '{self.name}' declares no endpoint '{obj}'"
                f" (it has: {', '.join(self.api.endpoints) or 'none'})"
            ) from None


def _server_time(date_header: str | None) -> datetime:
    """The API's clock from a response's `Date` header; ours when it has none."""
    try:
        return parsedate_to_datetime(date_header or "").astimezone(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _with_bound(
    incremental: Incremental,
    lower: CursorValue,
    params: dict[str, Any],
    body: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    text = bound_text(lower, incremental.format)
    if incremental.param:
        params = {**params, incremental.param: text}
    if incremental.body is not None:
        body = {**(body or {}), **_substitute(incremental.body, text)}
    return params, body


def bound_text(value: CursorValue, fmt: str) -> str:
    """The inclusive lower bound as the API reads it; time bounds are floored, never rounded
    up, so no record at the bound's own second or millisecond is left out."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if fmt == "unix":
            return str(int(moment.timestamp() // 1))
        if fmt == "unix_ms":
            return str(int(moment.timestamp() * 1000 // 1))
        if fmt == "iso":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    return str(value)


def _put(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`body` with `value` at the dotted `path`, the objects on the way made as needed."""
    *steps, last = path.split(".")
    here = body
    for step in steps:
        here = here.setdefault(step, {})
    here[last] = value
    return body


def _substitute(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace("{lower}", text)
    if isinstance(value, dict):
        return {k: _substitute(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, text) for v in value]
    return value


def _says_no_records(error: Any, no_records: Mapping[str, list[str]]) -> bool:
    """Whether a batch read's per-parent error only says the parent has no records."""
    return (
        bool(no_records)
        and isinstance(error, dict)
        and all(str(path_get(error, path)) in values for path, values in no_records.items())
    )
