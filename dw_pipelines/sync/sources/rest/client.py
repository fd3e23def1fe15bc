"""One HTTP client per opened REST source: authentication, retries, the request budget, errors.

urllib3 (the connection pool requests is built on) sends and orjson parses; tenacity decides
when to try again. A 429 waits what its `Retry-After` says (else what the rate-limit headers
say), a 5xx or timeout waits an exponential backoff; both are bounded, and every attempt counts
against the run's request budget. A response saying the rate-limit window is used up
(HubSpot's `X-HubSpot-RateLimit-*`, the IETF draft's `RateLimit-*`) makes the next request wait
for the window, so the API need not answer 429. Every message leaving here is redacted with the
secrets this client knows (keys, passwords, tokens it was issued).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import certifi
import orjson
import tenacity
import urllib3
from requests.utils import parse_header_links

from dw_pipelines.sync.errors import SourceUnreachable, SyncError
from dw_pipelines.sync.redact import redact
from dw_pipelines.sync.sources.rest.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2,
    OAuth2RefreshToken,
    RestApi,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A token is fetched again this long before the expiry its issuer announced.
TOKEN_MARGIN_SECONDS = 30.0


class RestApiError(SyncError):
    """The API refused a request: the message names the endpoint, the status and its reason."""


class RequestBudgetExhausted(SyncError):
    """The run reached its `max_requests`; nothing it read was committed."""


@dataclass
class Secrets:
    """The values read from the environment when the source opened (never logged)."""

    token: str | None = None
    key: str | None = None
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    base_url: str | None = None
    ca_bundle: str | None = None


@dataclass
class Usage:
    requests: int = 0
    retries: int = 0
    token_fetches: int = 0
    throttle_waits: int = 0
    """Pauses the rate-limit headers asked for before a 429 was needed."""


@dataclass(frozen=True)
class Response:
    """What the API answered to one request (its body read whole: one page)."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    """Case-insensitive, as urllib3 gives them."""
    content: bytes
    url: str

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)  # orjson.JSONDecodeError is a ValueError

    @cached_property
    def links(self) -> dict[str, dict[str, str]]:
        """The `Link` header's targets by their `rel` (as requests gives them)."""
        header = self.headers.get("Link")
        links = parse_header_links(header) if header else []
        return {link.get("rel") or link.get("url", ""): link for link in links}


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.wait = wait


class RestClient:
    def __init__(
        self,
        name: str,
        api: RestApi,
        secrets: Secrets,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name, self.api, self.secrets = name, api, secrets
        self.base_url = (secrets.base_url or api.base_url or "").rstrip("/") + "/"
        self.usage = Usage()
        self._sleep = sleep
        # urllib3 directly, not a requests Session: it costs half the CPU per request (measured
        # by bench/rest.py), which is most of a page's cost. Proxies and CA bundles from the
        # environment are not read; no retries or redirects beyond ours (see `_attempt`).
        self._pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=secrets.ca_bundle or certifi.where(),
            retries=urllib3.Retry(total=None, connect=False, read=False, status=False,
                                  other=False, redirect=5),
            timeout=urllib3.Timeout(connect=api.timeout_seconds, read=api.timeout_seconds),
        )  # fmt: skip
        self._headers = {"Accept": "application/json", **api.headers}
        self._access_token: str | None = None
        self._token_expires = 0.0
        self._issued: list[str] = []  # every token this run was given, the replaced ones too
        self._refresh_token = secrets.refresh_token  # replaced when the server rotates it
        self._throttle = 0.0  # seconds the last response asked the next request to wait

    def close(self) -> None:
        self._pool.clear()

    def scrub(self, text: str) -> str:
        s = self.secrets
        known = (s.token, s.key, s.password, s.client_secret, s.refresh_token, *self._issued)
        return redact(text, secrets=known)

    # -- requests -----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def request(
        self,
        endpoint: str,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Response:
        """The response to one API call (2xx), retried as the settings allow."""
        if params:
            params = {k: _wire(v) for k, v in params.items()}
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.api.max_retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda _state: self._count_retry(),
            reraise=True,
        )
        try:
            return retrying(self._attempt, endpoint, method, url, params, json)
        except _Retryable as exc:
            raise RestApiError(f"{exc} (gave up after {self.api.max_retries} retries)") from None

    def _count_retry(self) -> None:
        self.usage.retries += 1

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = exc.wait if isinstance(exc, _Retryable) else None
        if asked is not None:
            if asked > self.api.max_wait_seconds:
                raise RestApiError(
                    f"{exc}; the API asks to wait {asked:g}s, more than max_wait_seconds"
                    f" ({self.api.max_wait_seconds:g})"
                )
            return asked
        backoff = self.api.backoff_seconds * 2 ** (state.attempt_number - 1)
        return min(backoff * (0.5 + random.random() / 2), self.api.max_wait_seconds)

    def _attempt(
        self, endpoint: str, method: str, url: str, params: dict[str, Any] | None, json: Any
    ) -> Response:
        where = f"source '{self.name}', endpoint '{endpoint}': {method} {urlsplit(url).path}"
        refreshed = False
        while True:
            self._pause(where)
            self._spend(where)
            headers, params_sent = self._credentials(params)
            body = None
            if json is not None:
                body, headers = orjson.dumps(json), {**headers, "Content-Type": "application/json"}
            try:
                response = self._send(method, _with_query(url, params_sent), headers, body)
            except urllib3.exceptions.HTTPError as exc:
                reason = getattr(exc, "reason", None) or exc
                if isinstance(reason, urllib3.exceptions.TimeoutError):
                    raise _Retryable(
                        f"{where} timed out after {self.api.timeout_seconds:g}s", None
                    ) from None
                raise _Retryable(
                    self.scrub(f"{where} could not connect: {type(reason).__name__}"), None
                ) from None
            if response.status_code == 401 and isinstance(self.api.auth, OAuth2) and not refreshed:
                # The token may have been revoked or expired early: one new token, one retry.
                self._access_token, refreshed = None, True
                continue
            if response.ok:
                self._throttle = rate_limit_wait(response) or 0.0
                return response
            message = self.scrub(
                f"{where} answered HTTP {response.status_code}: {api_message(response)}"
            )
            if response.status_code in RETRY_STATUSES:
                asked = retry_after(response)
                if asked is None and response.status_code == 429:
                    asked = rate_limit_wait(response)
                raise _Retryable(message, asked)
            raise RestApiError(message)

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | str | None
    ) -> Response:
        answer = self._pool.request(method, url, body=body, headers={**self._headers, **headers})
        # The URL answered from (after redirects): relative next-page links resolve against it.
        for redirect in answer.retries.history if answer.retries else ():
            url = urljoin(url, redirect.redirect_location or "")
        return Response(answer.status, answer.reason or "", answer.headers, answer.data, url)

    def _pause(self, where: str) -> None:
        wait, self._throttle = self._throttle, 0.0
        if wait <= 0:
            return
        if wait > self.api.max_wait_seconds:
            raise RestApiError(
                f"{where}: the API's rate-limit window resets in {wait:g}s, more than"
                f" max_wait_seconds ({self.api.max_wait_seconds:g})"
            )
        self.usage.throttle_waits += 1
        self._sleep(wait)

    def _spend(self, where: str) -> None:
        if self.usage.requests >= self.api.max_requests:
            raise RequestBudgetExhausted(
                f"{where}: the run reached its request budget (max_requests ="
                f" {self.api.max_requests}); nothing of it was committed. Raise max_requests or"
                " sync more often."
            )
        self.usage.requests += 1

    # -- authentication -----------------------------------------------------------------------

    def _credentials(
        self, params: dict[str, Any] | None
    ) -> tuple[dict[str, str], dict[str, Any] | None]:
        auth, s = self.api.auth, self.secrets
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {s.token}"}, params
        if isinstance(auth, ApiKeyAuth):
            if auth.location == "header":
                return {auth.name: s.key or ""}, params
            return {}, {**(params or {}), auth.name: s.key}
        if isinstance(auth, BasicAuth):
            basic = urllib3.make_headers(basic_auth=f"{s.username or ''}:{s.password or ''}")
            return basic, params
        if isinstance(auth, OAuth2):
            return {"Authorization": f"Bearer {self._oauth_token(auth)}"}, params
        return {}, params

    def _oauth_token(self, auth: OAuth2) -> str:
        if self._access_token and time.monotonic() < self._token_expires:
            return self._access_token
        where = f"source '{self.name}': the token endpoint {urlsplit(auth.token_url).path}"
        self._spend(where)
        self.usage.token_fetches += 1
        form = {"grant_type": "client_credentials"}
        if isinstance(auth, OAuth2RefreshToken):
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token or ""}
        if auth.scope:
            form["scope"] = auth.scope
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth.client_auth == "basic":
            client = f"{self.secrets.client_id or ''}:{self.secrets.client_secret or ''}"
            headers |= urllib3.make_headers(basic_auth=client)
        else:
            form |= {
                "client_id": self.secrets.client_id or "",
                "client_secret": self.secrets.client_secret or "",
            }
        try:
            response = self._send("POST", self.url(auth.token_url), headers, urlencode(form))
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SourceUnreachable(
                self.scrub(f"{where} could not be reached: {type(reason).__name__}")
            ) from None
        if not response.ok:
            raise RestApiError(
                self.scrub(f"{where} answered HTTP {response.status_code}: {api_message(response)}")
            )
        body = response.json()
        self._access_token = str(body["access_token"])
        self._issued.append(self._access_token)
        if body.get("refresh_token"):
            # A rotated refresh token: the one just sent may no longer be accepted.
            self._refresh_token = str(body["refresh_token"])
            self._issued.append(self._refresh_token)
        expires_in = float(body.get("expires_in") or 3600)
        self._token_expires = time.monotonic() + max(expires_in - TOKEN_MARGIN_SECONDS, 0.0)
        return self._access_token


def api_message(response: Response) -> str:
    """The API's own reason, from the error shapes APIs document (Stripe `error.message`,
    HubSpot `message`, OAuth `error_description` ...), else the body's first 300 characters."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason or "no message"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("type") or error.get("code")
            return f"{error['message']}" + (f" ({kind})" if kind else "")
        for key in ("message", "error_description", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0])
    return str(body)[:300]


def rate_limit_wait(response: Response) -> float | None:
    """Seconds to wait before the next request when the response says none remain in the
    rate-limit window: HubSpot's `X-HubSpot-RateLimit-Remaining` with its
    `-Interval-Milliseconds` (the whole interval: when the window began is not said), or the
    IETF draft's `RateLimit-Remaining` with `RateLimit-Reset` (seconds). None if not said."""
    headers = response.headers
    hubspot = _number(headers.get("X-HubSpot-RateLimit-Remaining"))
    if hubspot is not None:
        interval = _number(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        return interval / 1000 if hubspot <= 0 and interval is not None else None
    remaining = _number(headers.get("RateLimit-Remaining"))
    if remaining is not None and remaining <= 0:
        return _number(headers.get("RateLimit-Reset"))
    return None


def _number(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def retry_after(response: Response) -> float | None:
    """Seconds the `Retry-After` header asks for (a number or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _with_query(url: str, params: Mapping[str, Any] | None) -> str:
    """The URL with the parameters added to its query (a list value repeats its name)."""
    if not params:
        return url
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}" if query else url


def _wire(value: Any) -> Any:
    """A query value as APIs read it: booleans in JSON's spelling (`archived=true`), which
    requests would send as Python's `True`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value
