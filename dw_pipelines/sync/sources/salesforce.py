"""Salesforce as a source, through simple-salesforce: REST query/queryMore and Bulk API 2.0.

Rows with `lower <= cursor < upper` are read one page at a time (REST pages of up to 2000
records in `ORDER BY <cursor>, Id` order, or Bulk 2.0 CSV pages of `bulk_page_records`), so an
object never sits whole in memory. Deletes come from `queryAll ... WHERE IsDeleted = true` and
are applied by the engine in the same warehouse transaction as the upserts.

Every API call goes through `_call`: it stops before the configured share of the daily API
quota, re-authenticates once on INVALID_SESSION_ID, and retries 5xx, UNABLE_TO_LOCK_ROW and
timeouts with backoff. Errors never carry the password, token, private key or session id.
"""

from __future__ import annotations

import io
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import requests
from pyarrow import csv as pa_csv
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from dw_pipelines.sync.errors import (
    DataConversionError,
    SchemaDriftError,
    SourceObjectMissing,
    SourceUnreachable,
    SyncError,
)
from dw_pipelines.sync.schema import Column, LogicalType, arrow_schema
from dw_pipelines.sync.sources.base import ReadRequest, SourceAbilities
from dw_pipelines.sync.sources.salesforce_defaults import CURSOR_FALLBACKS, DEFAULT_API_VERSION
from dw_pipelines.sync.state import CursorValue

# Compound fields are delivered through their components; binary content is out of scope.
SKIPPED_TYPES = {"address", "location", "base64"}
_STRING_TYPES = {
    "id", "reference", "string", "picklist", "multipicklist", "combobox", "textarea", "email",
    "url", "phone", "encryptedstring", "anyType",
}  # fmt: skip
_TYPES: dict[str, LogicalType] = {
    **dict.fromkeys(_STRING_TYPES, "string"),
    "boolean": "boolean",
    "int": "int32",
    "long": "int64",
    "date": "date",
    "datetime": "timestamptz",
    "time": "time",
    "complexvalue": "json",
    "json": "json",
}  # numeric kinds (double, currency, percent) are typed by their precision
_RETRYABLE_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}

T = TypeVar("T")


class SalesforceSyncError(SyncError):
    """Base of the Salesforce-specific sync errors."""


class QuotaExhausted(SalesforceSyncError):
    """Reading on would pass the share of the daily API quota this pipeline may use."""


class BulkJobFailed(SalesforceSyncError):
    """A Bulk 2.0 query job failed, timed out, or delivered a different number of rows."""


class SalesforceQueryError(SchemaDriftError):
    """Salesforce refused a query (INVALID_FIELD, MALFORMED_QUERY): it names object and field."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.field_name = field_name


@dataclass(frozen=True)
class SalesforceAuth:
    """One of: username + password + security token; username + consumer key + private key
    (OAuth 2.0 JWT bearer); consumer key + secret (client credentials, My Domain only);
    session id + instance URL. `repr` shows no secret."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    session_id: str | None = field(default=None, repr=False)
    instance_url: str | None = None

    def secrets(self) -> list[str]:
        return [
            s
            for s in (
                self.password,
                self.security_token,
                self.consumer_secret,
                self.private_key,
                self.session_id,
            )
            if s
        ]


@dataclass(frozen=True)
class SalesforceSettings:
    domain: str = "login"  # "login", "test" (sandbox) or "<my-domain>.my"
    api_version: str = DEFAULT_API_VERSION
    ca_bundle: str | None = None  # a CA file to trust instead of the system's
    bulk_threshold: int = 50_000  # records above which a read uses Bulk API 2.0
    bulk_page_records: int = 50_000
    bulk_poll_seconds: float = 2.0
    bulk_timeout_seconds: float = 3600.0
    quota_share: float = 0.8  # stop before using more than this share of the daily API quota
    max_retries: int = 3
    retry_backoff_seconds: float = 1.0
    request_timeout_seconds: float = 120.0
    batch_rows: int = 10_000


@dataclass
class ApiUsage:
    """API calls this source made, and the org's daily usage as Salesforce last reported it."""

    calls: int = 0
    used: int | None = None
    limit: int | None = None
    logins: int = 0
    retries: int = 0
    bulk_jobs: int = 0


class _Session(requests.Session):
    """Our HTTP session: ignores REQUESTS_CA_BUNDLE and proxies from the environment (so the
    configured CA applies), sets a default timeout and reads `Sforce-Limit-Info`."""

    def __init__(self, verify: str | bool, timeout: float, usage: ApiUsage) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = verify
        self.timeout = timeout
        self.usage = usage

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        if "/services/data/" in url:
            self.usage.calls += 1
        info = response.headers.get("Sforce-Limit-Info", "")
        usage = Salesforce.parse_api_usage(info).get("api-usage") if info else None
        if usage is not None:
            self.usage.used, self.usage.limit = usage.used, usage.total
        return response


def logical_column(f: dict[str, Any]) -> Column | None:
    """A describe() field as an engine column; None for fields a sync does not read."""
    kind, name, nullable = f["type"], f["name"], bool(f.get("nillable", True))
    if kind in SKIPPED_TYPES:
        return None
    if kind in ("double", "currency", "percent"):
        precision, scale = int(f.get("precision") or 0), int(f.get("scale") or 0)
        if 0 < precision <= 38 and scale <= precision:
            return Column(name, "decimal", nullable, precision, scale)
        return Column(name, "float64", nullable)
    # A type Salesforce adds later arrives as text.
    return Column(name, _TYPES.get(kind, "string"), nullable)


def soql_literal(value: CursorValue) -> str:
    """A cursor value as a SOQL literal (datetimes unquoted, in UTC with milliseconds)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ceil_ms(value: CursorValue) -> CursorValue:
    """An exclusive upper bound rounded up to Salesforce's millisecond precision."""
    if isinstance(value, datetime) and value.microsecond % 1000:
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000 + 1000)
    return value


def to_arrow(columns: Sequence[Column], texts: dict[str, pa.Array]) -> pa.RecordBatch:
    """Per column, Salesforce's text form of the values -> one batch typed as `columns`."""
    arrays = []
    for column in columns:
        try:
            arrays.append(_from_text(column, texts[column.name]))
        except (pa.ArrowInvalid, ValueError) as exc:
            raise DataConversionError(
                f"column '{column.name}' ({column.type_label}): a value does not convert: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(list(columns)))


def _from_text(column: Column, text: pa.Array) -> pa.Array:
    target = column.arrow_type()
    if column.type in ("string", "json"):
        return text
    if column.type == "boolean":
        return pc.equal(text, "true")
    if column.type == "time":
        return pa.array(
            [None if v is None else dtime.fromisoformat(v.rstrip("Z")) for v in text.to_pylist()],
            target,
        )
    # Datetimes come as ...+0000 (REST) or ...Z (Bulk): Arrow reads both as UTC instants.
    return pc.cast(text, target)


def json_texts(columns: Sequence[Column], records: list[dict[str, Any]]) -> dict[str, pa.Array]:
    """REST records (parsed with Decimal floats) as the same text form Bulk 2.0 delivers."""
    return {c.name: pa.array([_text(r.get(c.name)) for r in records], pa.string()) for c in columns}


def csv_texts(columns: Sequence[Column], page: str) -> dict[str, pa.Array]:
    """One Bulk 2.0 CSV page, parsed by Arrow: every column as text, empty fields null."""
    names = [c.name for c in columns]
    if not page.strip():
        return {n: pa.array([], pa.string()) for n in names}
    table = pa_csv.read_csv(
        io.BytesIO(page.encode()),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            include_columns=names,
        ),
    )
    return {n: table.column(n).combine_chunks() for n in names}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


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
        self._http = _Session(
            self.settings.ca_bundle or True, self.settings.request_timeout_seconds, self.usage
        )
        self._sf: Salesforce | None = None
        self._described: dict[str, dict[str, Any]] = {}
        self._quota_checked = False

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
        result = self._call(lambda sf: sf.query(f"SELECT COUNT() FROM {obj} WHERE {column} = null"))
        return int(result["totalSize"])

    def count(self, obj: str, where: str = "") -> int:
        result = self._call(lambda sf: sf.query(f"SELECT COUNT() FROM {obj}{where}"), obj)
        return int(result["totalSize"])

    def close(self) -> None:
        self._http.close()

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
            conditions.append(f"{request.cursor} < {soql_literal(_ceil_ms(request.upper))}")
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def _use_bulk(self, obj: str, where: str) -> bool:
        if self.settings.bulk_threshold <= 0:
            return True
        return self.count(obj, where) >= self.settings.bulk_threshold

    def _rest_batches(
        self, obj: str, soql: str, columns: list[Column], include_deleted: bool
    ) -> Iterator[pa.RecordBatch]:
        page = self._call(lambda sf: sf.query(soql, include_deleted=include_deleted), obj)
        pending: list[dict[str, Any]] = []
        while True:
            pending.extend(page["records"])
            if len(pending) >= self.settings.batch_rows:
                yield self._json_batch(columns, pending)
                pending = []
            if page.get("done", True):
                break
            next_url = page["nextRecordsUrl"]
            page = self._call(
                lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True), obj
            )
        if pending:
            yield self._json_batch(columns, pending)

    @staticmethod
    def _json_batch(columns: list[Column], records: list[dict[str, Any]]) -> pa.RecordBatch:
        return to_arrow(columns, json_texts(columns, records))

    def _bulk_batches(self, obj: str, soql: str, columns: list[Column]) -> Iterator[pa.RecordBatch]:
        try:
            job = self._call(lambda sf: self._bulk(sf, obj).create_job(Operation.query, soql), obj)
        except _BulkUnsupported:
            yield from self._rest_batches(obj, soql, columns, include_deleted=False)
            return
        self.usage.bulk_jobs += 1
        job_id = job["id"]
        info = self._wait_for_job(obj, job_id)
        expected = int(info.get("numberRecordsProcessed") or 0)
        delivered = 0
        # The next page downloads (and parses) while the warehouse loads this one: at most two
        # pages are in memory, and the transfer time is no longer added to the load time.
        for batch in read_ahead(self._bulk_pages(obj, job_id, columns)):
            delivered += batch.num_rows
            for offset in range(0, batch.num_rows, self.settings.batch_rows):
                yield batch.slice(offset, self.settings.batch_rows)
        if delivered != expected:
            raise BulkJobFailed(
                f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {obj} processed {expected}"
                f" records but delivered {delivered}; nothing was loaded"
            )

    def _bulk_pages(self, obj: str, job_id: str, columns: list[Column]) -> Iterator[pa.RecordBatch]:
        locator = ""
        while True:
            page = self._call(
                lambda sf, at=locator: self._bulk(sf, obj).get_query_results(
                    job_id, at, self.settings.bulk_page_records
                ),
                obj,
            )
            batch = self._csv_batch(columns, page["records"])
            if batch.num_rows != page["number_of_records"]:
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {obj} delivered"
                    f" {batch.num_rows} rows in a page whose Sforce-NumberOfRecords says"
                    f" {page['number_of_records']}; nothing was loaded"
                )
            yield batch
            locator = page["locator"]
            if not locator:
                return

    def _bulk(self, sf: Salesforce, obj: str) -> _Bulk2Client:
        # The client below SFBulk2Type: its methods return Sforce-NumberOfRecords per page and
        # leave polling to us (configurable wait and timeout, the job's row count checked).
        return _Bulk2Client(obj, sf.bulk2_url, dict(sf.headers), self._http)

    def _wait_for_job(self, obj: str, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.bulk_timeout_seconds
        while True:
            info = self._call(lambda sf: self._bulk(sf, obj).get_job(job_id, True), obj)
            state = info["state"]
            if state == "JobComplete":
                return info
            if state in ("Failed", "Aborted"):
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {obj} ended {state}:"
                    f" {self._scrub(str(info.get('errorMessage') or 'no message'))};"
                    " nothing was loaded"
                )
            if time.monotonic() >= deadline:
                try:
                    self._call(lambda sf: self._bulk(sf, obj).abort_job(job_id, True), obj)
                except SyncError:
                    pass  # the timeout is what the user needs to hear about
                raise BulkJobFailed(
                    f"Salesforce '{self.name}': Bulk 2.0 job {job_id} on {obj} was still {state}"
                    f" after {self.settings.bulk_timeout_seconds:g}s; it was aborted and nothing"
                    " was loaded"
                )
            self._sleep(self.settings.bulk_poll_seconds)

    @staticmethod
    def _csv_batch(columns: list[Column], page: str) -> pa.RecordBatch:
        return to_arrow(columns, csv_texts(columns, page))

    # -- API calls: auth, quota, retries, errors ----------------------------------------------

    def _client(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _login(self) -> Salesforce:
        a, s = self.auth, self.settings
        common = {"session": self._http, "sf_version": s.api_version, "domain": s.domain}
        try:
            if a.session_id and a.instance_url and self.usage.logins == 0:
                session_id, instance_url = a.session_id, a.instance_url
            elif a.username and a.password is not None and a.security_token is not None:
                session_id, instance = SalesforceLogin(
                    username=a.username,
                    password=a.password,
                    security_token=a.security_token,
                    **common,
                )
                instance_url = f"https://{instance}"
            elif a.username and a.consumer_key and a.private_key:
                session_id, instance = SalesforceLogin(
                    username=a.username,
                    consumer_key=a.consumer_key,
                    privatekey=a.private_key,
                    **common,
                )
                instance_url = f"https://{instance}"
            elif a.consumer_key and a.consumer_secret:
                session_id, instance = SalesforceLogin(
                    consumer_key=a.consumer_key, consumer_secret=a.consumer_secret, **common
                )
                instance_url = f"https://{instance}"
            elif a.session_id:
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': the session expired and no credentials are"
                    " configured to log in again"
                )
            else:
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': no credentials: give username + password +"
                    " security_token, username + consumer_key + private_key (JWT),"
                    " consumer_key + consumer_secret, or session_id + instance_url"
                )
        except SalesforceAuthenticationFailed as exc:
            raise SourceUnreachable(
                f"Salesforce '{self.name}': login refused: {self._scrub(str(exc))}"
            ) from None
        except requests.exceptions.SSLError:
            raise SourceUnreachable(
                f"Salesforce '{self.name}': TLS verification of the login endpoint of domain"
                f" '{s.domain}' failed (check ca_bundle)"
            ) from None
        except requests.RequestException as exc:
            raise SourceUnreachable(
                f"Salesforce '{self.name}': cannot reach the login endpoint of domain"
                f" '{s.domain}': {self._scrub(type(exc).__name__ + ': ' + str(exc))}"
            ) from None
        self.usage.logins += 1
        return Salesforce(
            session_id=session_id,
            instance_url=instance_url,
            session=self._http,
            version=s.api_version,
            parse_float=Decimal,
        )

    def _check_quota(self) -> None:
        if not self._quota_checked:
            self._quota_checked = True
            limits = self._client().limits()
            daily = limits.get("DailyApiRequests") or {}
            if "Max" in daily:
                self.usage.limit = int(daily["Max"])
                self.usage.used = int(daily["Max"]) - int(daily.get("Remaining", 0))
        if self.usage.used is None or not self.usage.limit:
            return
        allowed = int(self.usage.limit * self.settings.quota_share)
        if self.usage.used >= allowed:
            raise QuotaExhausted(
                f"Salesforce '{self.name}': the org has used {self.usage.used} of its"
                f" {self.usage.limit} daily API requests; this pipeline stops at"
                f" {self.settings.quota_share:.0%} ({allowed}). Nothing was loaded; raise"
                " quota_share or wait for the quota to renew."
            )

    def _call(self, fn: Callable[[Salesforce], T], obj: str | None = None) -> T:
        """One API call with the quota guard, one re-login, and bounded retries."""
        relogged = False
        attempt = 0
        while True:
            try:
                self._check_quota()
                return fn(self._client())
            except SalesforceExpiredSession as exc:
                if relogged or _error_code(exc) not in ("INVALID_SESSION_ID", None):
                    when = " again after logging in anew" if relogged else ""
                    raise SourceUnreachable(
                        f"Salesforce '{self.name}': session refused{when}:"
                        f" {self._scrub(_error_text(exc))}"
                    ) from None
                relogged = True
                self._sf = self._login()
                continue
            except SalesforceMalformedRequest as exc:
                code = _error_code(exc)
                if code == "INVALIDENTITY" or "not supported by the Bulk API" in _error_text(exc):
                    raise _BulkUnsupported() from None
                if code in _RETRYABLE_CODES and attempt < self.settings.max_retries:
                    attempt = self._backoff(attempt)
                    continue
                raise self._query_error(exc, obj) from None
            except SalesforceResourceNotFound:
                raise SourceObjectMissing(
                    f"Salesforce '{self.name}': object '{obj}' does not exist in the org"
                    " (or this user cannot see it)"
                ) from None
            except SalesforceError as exc:
                if _error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaExhausted(
                        f"Salesforce '{self.name}': the org's API request limit is exceeded"
                        f" ({self._scrub(_error_text(exc))}); nothing was loaded"
                    ) from None
                retryable = (exc.status >= 500) or _error_code(exc) in _RETRYABLE_CODES
                if retryable and attempt < self.settings.max_retries:
                    attempt = self._backoff(attempt)
                    continue
                raise SyncError(
                    f"Salesforce '{self.name}': {_what(obj)}failed with HTTP {exc.status}"
                    f"{' after ' + str(attempt) + ' retries' if attempt else ''}:"
                    f" {self._scrub(_error_text(exc))}"
                ) from None
            except requests.exceptions.SSLError as exc:
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': TLS verification failed (check ca_bundle):"
                    f" {type(exc).__name__}"
                ) from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                if attempt < self.settings.max_retries:
                    attempt = self._backoff(attempt)
                    continue
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': {_what(obj)}no answer after {attempt} retries:"
                    f" {type(exc).__name__}"
                ) from None

    def _backoff(self, attempt: int) -> int:
        self.usage.retries += 1
        self._sleep(self.settings.retry_backoff_seconds * (2**attempt))
        return attempt + 1

    def _query_error(self, exc: SalesforceError, obj: str | None) -> SyncError:
        code, text = _error_code(exc), _error_text(exc)
        if code in ("INVALID_FIELD", "MALFORMED_QUERY", "INVALID_TYPE"):
            field_name = _between(text, "No such column '", "'")
            what = f"field '{field_name}' of object '{obj}'" if field_name else f"object '{obj}'"
            return SalesforceQueryError(
                f"Salesforce '{self.name}': {code} on {what}: {self._scrub(text.strip())}",
                field_name,
            )
        return SyncError(f"Salesforce '{self.name}': {_what(obj)}{code}: {self._scrub(text)}")

    def _describe(self, obj: str) -> dict[str, Any]:
        if obj not in self._described:
            self._described[obj] = self._call(lambda sf: getattr(sf, obj).describe(), obj)
        return self._described[obj]

    def _scrub(self, text: str) -> str:
        for secret in self.auth.secrets() + ([self._sf.session_id] if self._sf else []):
            text = text.replace(secret, "***")
        return text


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, produced one step ahead in a thread; its errors re-raised here, in order."""
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slot.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slot.put(("end", None))
        except BaseException as exc:  # handed to the consumer, who raises it
            slot.put(("error", exc))

    worker = threading.Thread(target=produce, name="salesforce-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


class _BulkUnsupported(Exception):
    """Bulk API 2.0 does not serve this object: read it through REST instead."""


def _error_body(exc: SalesforceError) -> dict[str, Any]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0]
    if isinstance(content, dict):
        return content
    return {}


def _error_code(exc: SalesforceError) -> str | None:
    return _error_body(exc).get("errorCode")


def _error_text(exc: SalesforceError) -> str:
    body = _error_body(exc)
    if body:
        return f"{body.get('errorCode', '')}: {body.get('message', '')}".strip(": ")
    return str(exc.content)[:500]


def _between(text: str, start: str, end: str) -> str | None:
    at = text.find(start)
    if at < 0:
        return None
    rest = text[at + len(start) :]
    return rest[: rest.find(end)] if end in rest else None


def _what(obj: str | None) -> str:
    return f"reading '{obj}' " if obj else ""
