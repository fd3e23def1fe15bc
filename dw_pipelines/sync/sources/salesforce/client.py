"""One Salesforce org as API calls: login, the daily quota, retries, and errors in our terms.

Every call goes through `SalesforceClient.call`: it stops before the configured share of the
daily API quota, re-authenticates once on INVALID_SESSION_ID, and retries 5xx,
UNABLE_TO_LOCK_ROW and timeouts with backoff. Errors never carry the password, token, private
key or session id. REST (describe, query, limits) goes through simple-salesforce's public
methods; Bulk 2.0 (`bulk.py`) through `request`, on the same session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from dw_pipelines.sync.errors import (
    SchemaDriftError,
    SourceObjectMissing,
    SourceUnreachable,
    SyncError,
)
from dw_pipelines.sync.sources.salesforce_defaults import DEFAULT_API_VERSION

_RETRYABLE_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
_ERRORS_BY_STATUS: dict[int, type[SalesforceError]] = {
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}

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


class BulkUnsupported(Exception):
    """Bulk API 2.0 does not serve this object: read it through REST instead."""


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

    def call_seconds(self) -> float:
        """The longest one `call` can take: every attempt timing out, with the backoff between."""
        attempts = self.max_retries + 1
        backoff = self.retry_backoff_seconds * (2**self.max_retries - 1)
        return self.request_timeout_seconds * attempts + backoff


@dataclass
class ApiUsage:
    """API calls this source made, and the org's daily usage as Salesforce last reported it.

    Shared by the clients of one source (the read-ahead thread has its own), hence the lock."""

    calls: int = 0
    used: int | None = None
    limit: int | None = None
    logins: int = 0
    retries: int = 0
    bulk_jobs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


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
            self.usage.add(calls=1)
        info = response.headers.get("Sforce-Limit-Info", "")
        usage = Salesforce.parse_api_usage(info).get("api-usage") if info else None
        if usage is not None:
            with self.usage.lock:
                self.usage.used, self.usage.limit = usage.used, usage.total
        return response


class SalesforceClient:
    """API calls to one org on one HTTP session (one thread's). Logs in lazily."""

    def __init__(
        self,
        auth: SalesforceAuth,
        settings: SalesforceSettings,
        name: str,
        usage: ApiUsage,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth, self.settings, self.name, self.usage = auth, settings, name, usage
        self._sleep = sleep
        self.http = _Session(settings.ca_bundle or True, settings.request_timeout_seconds, usage)
        self._sf: Salesforce | None = None
        self._quota_checked = False
        self._user_id: str | None = None

    def fork(self) -> SalesforceClient:
        """A client for another thread: its own HTTP session (a `requests.Session` is not
        thread-safe), the same login and the same usage counters."""
        twin = SalesforceClient(self.auth, self.settings, self.name, self.usage, self._sleep)
        twin._quota_checked = self._quota_checked
        if self._sf is not None:
            twin._sf = twin._salesforce(self._sf.session_id, f"https://{self._sf.sf_instance}")
        return twin

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        fn: Callable[[Salesforce], T],
        obj: str | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> T:
        """One API call with the quota guard, one re-login, and bounded retries.

        `on_timeout` runs after an attempt got no answer, before the next (or before failing):
        for a call that may have taken effect although its answer was lost."""
        relogged = False
        attempt = 0
        while True:
            try:
                self._check_quota()
                return fn(self.salesforce())
            except SalesforceExpiredSession as exc:
                if relogged or _error_code(exc) not in ("INVALID_SESSION_ID", None):
                    when = " again after logging in anew" if relogged else ""
                    raise SourceUnreachable(
                        f"Salesforce '{self.name}': session refused{when}:"
                        f" {self.scrub(_error_text(exc))}"
                    ) from None
                relogged = True
                self._sf = self._login()
                continue
            except SalesforceMalformedRequest as exc:
                code = _error_code(exc)
                if code == "INVALIDENTITY" or "not supported by the Bulk API" in _error_text(exc):
                    raise BulkUnsupported() from None
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
                        f" ({self.scrub(_error_text(exc))}); nothing was loaded"
                    ) from None
                retryable = (exc.status >= 500) or _error_code(exc) in _RETRYABLE_CODES
                if retryable and attempt < self.settings.max_retries:
                    attempt = self._backoff(attempt)
                    continue
                raise SyncError(
                    f"Salesforce '{self.name}': {_what(obj)}failed with HTTP {exc.status}"
                    f"{' after ' + str(attempt) + ' retries' if attempt else ''}:"
                    f" {self.scrub(_error_text(exc))}"
                ) from None
            except requests.exceptions.SSLError as exc:
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': TLS verification failed (check ca_bundle):"
                    f" {type(exc).__name__}"
                ) from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                if on_timeout is not None:
                    on_timeout()
                if attempt < self.settings.max_retries:
                    attempt = self._backoff(attempt)
                    continue
                raise SourceUnreachable(
                    f"Salesforce '{self.name}': {_what(obj)}no answer after {attempt} retries:"
                    f" {type(exc).__name__}"
                ) from None

    def request(
        self, sf: Salesforce, method: str, path: str, accept: str = "application/json", **kw: Any
    ) -> requests.Response:
        """One request to `services/data/vXX.X/<path>` (or to an absolute `/services/...`
        path) with the session's headers; an error answer raised as simple-salesforce's
        exception of its status, so `call` treats it like any REST error."""
        url = f"https://{sf.sf_instance}{path}" if path.startswith("/") else sf.base_url + path
        headers = {**sf.headers, "Accept": accept}
        response = self.http.request(method, url, headers=headers, **kw)
        if response.status_code >= 300:
            try:
                content: Any = response.json()
            except ValueError:
                content = response.text
            error = _ERRORS_BY_STATUS.get(response.status_code, SalesforceGeneralError)
            raise error(url, response.status_code, path, content)
        return response

    def user_id(self) -> str:
        """The id of the user we are logged in as (OAuth 2.0 `userinfo`, any session kind)."""
        if self._user_id is None:
            info = self.call(lambda sf: self.request(sf, "GET", "/services/oauth2/userinfo").json())
            self._user_id = str(info["user_id"])
        return self._user_id

    def salesforce(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def scrub(self, text: str) -> str:
        for secret in self.auth.secrets() + ([self._sf.session_id] if self._sf else []):
            text = text.replace(secret, "***")
        return text

    # -- internals ----------------------------------------------------------------------------

    def _salesforce(self, session_id: str, instance_url: str) -> Salesforce:
        return Salesforce(
            session_id=session_id,
            instance_url=instance_url,
            session=self.http,
            version=self.settings.api_version,
            parse_float=Decimal,
        )

    def _login(self) -> Salesforce:
        a, s = self.auth, self.settings
        common = {"session": self.http, "sf_version": s.api_version, "domain": s.domain}
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
                f"Salesforce '{self.name}': login refused: {self.scrub(str(exc))}"
            ) from None
        except requests.exceptions.SSLError:
            raise SourceUnreachable(
                f"Salesforce '{self.name}': TLS verification of the login endpoint of domain"
                f" '{s.domain}' failed (check ca_bundle)"
            ) from None
        except requests.RequestException as exc:
            raise SourceUnreachable(
                f"Salesforce '{self.name}': cannot reach the login endpoint of domain"
                f" '{s.domain}': {self.scrub(type(exc).__name__ + ': ' + str(exc))}"
            ) from None
        self.usage.add(logins=1)
        return self._salesforce(session_id, instance_url)

    def _check_quota(self) -> None:
        if not self._quota_checked:
            self._quota_checked = True
            limits = self.salesforce().limits()
            daily = limits.get("DailyApiRequests") or {}
            if "Max" in daily:
                with self.usage.lock:
                    self.usage.limit = int(daily["Max"])
                    self.usage.used = int(daily["Max"]) - int(daily.get("Remaining", 0))
        used, limit = self.usage.used, self.usage.limit
        if used is None or not limit:
            return
        allowed = int(limit * self.settings.quota_share)
        if used >= allowed:
            raise QuotaExhausted(
                f"Salesforce '{self.name}': the org has used {used} of its"
                f" {limit} daily API requests; this pipeline stops at"
                f" {self.settings.quota_share:.0%} ({allowed}). Nothing was loaded; raise"
                " quota_share or wait for the quota to renew."
            )

    def _backoff(self, attempt: int) -> int:
        self.usage.add(retries=1)
        self._sleep(self.settings.retry_backoff_seconds * (2**attempt))
        return attempt + 1

    def _query_error(self, exc: SalesforceError, obj: str | None) -> SyncError:
        code, text = _error_code(exc), _error_text(exc)
        if code in ("INVALID_FIELD", "MALFORMED_QUERY", "INVALID_TYPE"):
            field_name = _between(text, "No such column '", "'")
            what = f"field '{field_name}' of object '{obj}'" if field_name else f"object '{obj}'"
            return SalesforceQueryError(
                f"Salesforce '{self.name}': {code} on {what}: {self.scrub(text.strip())}",
                field_name,
            )
        return SyncError(f"Salesforce '{self.name}': {_what(obj)}{code}: {self.scrub(text)}")


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
