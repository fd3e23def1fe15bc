"""Local JSON APIs over HTTPS that answer with the vendors' documented shapes.

- Stripe (`/v1/<objects>`): list objects `{"object": "list", "data", "has_more", "url"}` newest
  first, `limit` (max 100), `starting_after`, `created[gte|gt|lte|lt]`, child lists such as
  `/v1/invoices/<id>/lines`; `/v1/events` (`type`, e.g. `customer.deleted`, or `types[]`,
  written by `FakeApi.stripe_delete` and `FakeApi.stripe_update`); `Authorization: Bearer sk_test_...`; errors
  `{"error": {"message", "type"}}`. A bad key's message echoes the key whole (Stripe masks it):
  harsher than the real API, so tests prove our own redaction.
- HubSpot CRM v3 (`/crm/v3/objects/<type>`): `results`, `paging.next.after` (the next id),
  `archived=true` listing archived records (`FakeApi.hubspot_archive`, with `archivedAt`), and
  `POST .../search` with `filterGroups` on `hs_lastmodifieddate`/`lastmodifieddate`, sorts,
  `after` as an offset refused beyond the 10,000-result window; CRM v4 associations
  (`/crm/v4/objects/<from>/<id>/associations/<to>`, `FakeApi.hubspot_associate`) and their
  batch read (`POST /crm/v4/associations/<from>/<to>/batch/read`, `{"inputs": [{"id",
  "after"?}]}`, at most 1,000: one result per record with its `to` list, paged per result by
  `paging.next.after` past `FakeApi.association_page`; a record with none, or no such record,
  only under `errors` (`NO_ASSOCIATIONS_FOUND`, or `FakeApi.association_errors`' own) of a
  207 Multi-Status); errors
  `{"status": "error", "message", "category"}`; private-app or OAuth bearer tokens.
- Generic (`/api/<style>/items`): the other pagination styles (`page_number`, `offset`,
  `next_url`, `link_header`), with `updated_since`; bearer, `X-Api-Key` header, `api_key`
  query parameter or HTTP Basic.
- OAuth 2.0 (`POST /oauth/token`): client credentials (RFC 6749 4.4) and the refresh-token
  grant (RFC 6749 6, as HubSpot's `/oauth/v1/token`), optionally rotating the refresh token
  (the old one is then refused: HubSpot's `BAD_REFRESH_TOKEN` body); access tokens that expire
  or can be revoked (then 401 `{"error": "invalid_token"}`).

- Rate limits (`FakeApi.limit`): a fixed window of requests per interval on the routes whose
  path contains a fragment, announced HubSpot's way (`X-HubSpot-RateLimit-Max`, `-Remaining`,
  `-Interval-Milliseconds`, and a 429 `RATE_LIMIT` body without Retry-After) or the IETF
  draft's (`RateLimit-Limit`, `-Remaining`, `-Reset`). The window's clock is the fake's own
  (`FakeApi.now`, and the `Date` header), which a test moves forward (`advance`) instead of
  sleeping.

Any route can be told to fail (`FakeApi.fail`: 429 with Retry-After, 5xx ...) a number of times.
Tests drive it in-process; every request is recorded in `FakeApi.log`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dw_pipelines.devservices.salesforce_fake import make_certificate
from dw_pipelines.devservices.serving import serve_until_stopped

UTC = dt.UTC
STRIPE_PREFIX = {
    "customers": "cus",
    "charges": "ch",
    "invoices": "in",
    "refunds": "re",
    "events": "evt",
}
SEARCH_WINDOW = 10_000


@dataclass
class Fault:
    path: str
    status: int
    times: int
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to hold the answer (a client with a shorter timeout gives up first)."""
    html: str | None = None
    """Answered as an HTML page instead of the API's JSON error (a proxy's or gateway's)."""


@dataclass
class RateLimit:
    path: str
    limit: int
    interval: float
    style: str = "hubspot"  # or "ietf"
    used: int = 0
    window_start: float | None = None


@dataclass
class FakeApi:
    """The data and credentials the routes serve; change it between (or during) syncs."""

    stripe_keys: set[str] = field(default_factory=lambda: {"sk_test_4eC39HqLyjWDarjtT1zdp7dc"})
    hubspot_tokens: set[str] = field(default_factory=lambda: {"pat-na1-11111111-2222"})
    api_key: str = "key-generic-0123456789"
    basic: tuple[str, str] = ("api-user", "api-password-secret")
    clients: dict[str, str] = field(default_factory=lambda: {"client-1": "client-secret-abc"})
    token_ttl: float = 3600.0
    refresh_tokens: set[str] = field(default_factory=lambda: {"refresh-0000-initial"})
    rotate_refresh_tokens: bool = False
    stripe: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hubspot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hubspot_archived: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Archived CRM records by object type: gone from lists and searches, listed with
    `archived=true` (HubSpot keeps them 90 days)."""
    hubspot_associations: list[dict[str, Any]] = field(default_factory=list)
    association_page: int = 500
    association_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A batch read answers these ids with the error given instead of their associations."""
    """Associations one result of a batch read holds before it pages (tests shrink it)."""
    items: list[dict[str, Any]] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    search_window: int = SEARCH_WINDOW
    """Results a HubSpot search pages through by offset (tests shrink it)."""
    rate_limit: RateLimit | None = None
    rate_limited: int = 0
    """How many requests were answered 429 by the rate limit."""
    clock_offset: float = 0.0
    _issued: dict[str, float] = field(default_factory=dict)
    _faults: list[Fault] = field(default_factory=list)
    _ids: int = 0

    # -- data ---------------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def stripe_add(self, collection: str, created: int | None = None, **fields: Any) -> str:
        """A Stripe object (`id`, `object`, `created` epoch seconds, `livemode`, fields)."""
        with self.lock:
            prefix = STRIPE_PREFIX.get(collection.split("/")[0], "obj")
            obj_id = f"{prefix}_{self._next_id():08d}"
            record = {
                "id": obj_id,
                "object": collection.rstrip("s").split("/")[-1],
                "created": int(time.time()) if created is None else created,
                "livemode": False,
                **fields,
            }
            self.stripe.setdefault(collection, []).append(record)
            return obj_id

    def stripe_delete(self, collection: str, obj_id: str, at: int | None = None) -> None:
        """Deletes the object as Stripe does: gone from its list, a `<object>.deleted` event
        (`data.object` is the object, `deleted: true`) in `/v1/events`."""
        with self.lock:
            objects = self.stripe[collection]
            record = next(r for r in objects if r["id"] == obj_id)
            objects.remove(record)
            self.stripe_add(
                "events",
                created=at,
                type=f"{record['object']}.deleted",
                data={"object": {**record, "deleted": True}},
            )

    def stripe_update(
        self, collection: str, obj_id: str, at: int, event: str | None = None, **fields: Any
    ) -> None:
        """Updates the object as Stripe does: changed in its list (its `created` kept), and an
        event (`event`, default `<object>.updated`) whose `data.object` is the whole updated
        object and `data.previous_attributes` the fields' old values."""
        with self.lock:
            record = next(r for r in self.stripe[collection] if r["id"] == obj_id)
            previous = {k: record.get(k) for k in fields}
            record.update(fields)
            self.stripe_add(
                "events",
                created=at,
                type=event or f"{record['object']}.updated",
                data={"object": json.loads(json.dumps(record)), "previous_attributes": previous},
            )

    def hubspot_add(self, object_type: str, at: dt.datetime, **properties: Any) -> str:
        with self.lock:
            obj_id = str(100 + self._next_id())
            stamp = _iso(at)
            self.hubspot.setdefault(object_type, []).append(
                {
                    "id": obj_id,
                    "properties": {
                        "hs_object_id": obj_id,
                        "createdate": stamp,
                        "hs_lastmodifieddate": stamp,
                        **properties,
                    },
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "archived": False,
                }
            )
            return obj_id

    def hubspot_update(self, object_type: str, obj_id: str, at: dt.datetime, **props: Any) -> None:
        with self.lock:
            record = next(r for r in self.hubspot[object_type] if r["id"] == obj_id)
            record["properties"].update(props, hs_lastmodifieddate=_iso(at))
            record["updatedAt"] = _iso(at)

    def hubspot_archive(self, object_type: str, obj_id: str, at: dt.datetime) -> None:
        """Archives (deletes) the record as HubSpot does: `archived: true`, `archivedAt`."""
        with self.lock:
            records = self.hubspot[object_type]
            record = next(r for r in records if r["id"] == obj_id)
            records.remove(record)
            record.update(archived=True, archivedAt=_iso(at))
            self.hubspot_archived.setdefault(object_type, []).append(record)

    def hubspot_associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        type_id: int,
        label: str | None = None,
    ) -> None:
        """An association read from `from_type`'s side (CRM v4): one type of it per call."""
        with self.lock:
            for a in self.hubspot_associations:
                if (a["from_type"], a["from_id"], a["to_type"], a["to_id"]) == (
                    from_type,
                    from_id,
                    to_type,
                    to_id,
                ):
                    a["types"].append((type_id, label))
                    return
            self.hubspot_associations.append(
                {
                    "from_type": from_type,
                    "from_id": from_id,
                    "to_type": to_type,
                    "to_id": to_id,
                    "types": [(type_id, label)],
                }
            )

    def item_add(self, at: dt.datetime, **fields: Any) -> int:
        with self.lock:
            item_id = self._next_id()
            self.items.append({"id": item_id, "updated_at": _iso(at), **fields})
            return item_id

    # -- behaviour ----------------------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        times: int = 1,
        retry_after: str | None = None,
        delay: float = 0.0,
        html: str | None = None,
    ) -> None:
        """The next `times` requests whose path (with its query) contains `path` are answered
        `status`, after `delay` seconds (with the `html` page as the body, if given)."""
        with self.lock:
            self._faults.append(Fault(path, status, times, retry_after, delay, html))

    def limit(
        self, path: str, limit: int, interval: float, style: str = "hubspot", used: int = 0
    ) -> None:
        """At most `limit` requests per `interval` seconds to paths containing `path`; `used`
        of the first window are already spent (by another client of the same account)."""
        with self.lock:
            self.rate_limit = RateLimit(path, limit, interval, style, used)

    def now(self) -> float:
        return time.monotonic() + self.clock_offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def take_rate_limit(self, path: str) -> tuple[bool, dict[str, str]]:
        """Whether the request is within the window, and the headers announcing the window."""
        with self.lock:
            rule = self.rate_limit
            if rule is None or rule.path not in path:
                return True, {}
            now = self.now()
            if rule.window_start is None or now - rule.window_start >= rule.interval:
                if rule.window_start is not None:
                    rule.used = 0
                rule.window_start = now
            allowed = rule.used < rule.limit
            if allowed:
                rule.used += 1
            else:
                self.rate_limited += 1
            remaining = str(rule.limit - rule.used)
            if rule.style == "hubspot":
                return allowed, {
                    "X-HubSpot-RateLimit-Max": str(rule.limit),
                    "X-HubSpot-RateLimit-Remaining": remaining,
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(rule.interval * 1000)),
                }
            reset = math.ceil(rule.window_start + rule.interval - now)
            return allowed, {
                "RateLimit-Limit": str(rule.limit),
                "RateLimit-Remaining": remaining,
                "RateLimit-Reset": str(reset),
            }

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def revoke_tokens(self) -> None:
        with self.lock:
            self._issued.clear()

    def requests_to(self, fragment: str) -> list[tuple[str, str, dict[str, Any] | None]]:
        with self.lock:
            return [entry for entry in self.log if fragment in entry[1]]

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.path in path and fault.times > 0:
                    fault.times -= 1
                    return fault
            return None

    def issue_token(self) -> str:
        with self.lock:
            token = f"oauth-{self._next_id():06d}-{time.monotonic_ns()}"
            self._issued[token] = time.monotonic() + self.token_ttl
            return token

    def use_refresh_token(self, token: str) -> str | None:
        """None if the token is unknown; else the refresh token to return (a new one when
        rotating, which retires `token`)."""
        with self.lock:
            if token not in self.refresh_tokens:
                return None
            if not self.rotate_refresh_tokens:
                return token
            self.refresh_tokens.discard(token)
            rotated = f"refresh-{self._next_id():04d}-{time.monotonic_ns()}"
            self.refresh_tokens.add(rotated)
            return rotated

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return self._issued.get(token, 0.0) > time.monotonic()


def _iso(at: dt.datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _association(held: dict[str, Any]) -> dict[str, Any]:
    """One association as CRM v4 gives it: `{toObjectId, associationTypes}`."""
    return {
        "toObjectId": int(held["to_id"]),
        "associationTypes": [
            {
                "category": "HUBSPOT_DEFINED" if label is None else "USER_DEFINED",
                "typeId": type_id,
                "label": label,
            }
            for type_id, label in held["types"]
        ],
    }


def _no_associations(from_type: str, from_id: str, to_type: str) -> dict[str, Any]:
    """A batch read's error for an id without associations of the type asked."""
    one = {"contacts": "contact", "companies": "company", "deals": "deal"}
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {one.get(to_type, to_type)} is associated with"
        f" {one.get(from_type, from_type)} {from_id}.",
        "context": {
            "fromObjectId": [from_id],
            "fromObjectType": [one.get(from_type, from_type).upper()],
            "toObjectType": [one.get(to_type, to_type).upper()],
        },
        "errors": [],
        "links": {},
    }


def _ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers, about 40 ms a response on a kept-alive connection.
    disable_nagle_algorithm = True
    _limit_headers: dict[str, str] = {}  # noqa: RUF012 (set per request, never mutated)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the test's output stays readable

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The `Date` header follows the fake's clock, which tests move instead of sleeping.
        moved = time.time() + self.server.api.clock_offset
        return super().date_time_string(moved if timestamp is None else timestamp)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # -- dispatch -----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)
        with api.lock:
            api.log.append((method, self.path, body))
        allowed, self._limit_headers = api.take_rate_limit(self.path)
        if not allowed:
            self._json(
                429,
                {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": "SECONDLY",
                },
            )
            return
        fault = api.take_fault(self.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)  # the server's latency, not the test's: clients time out
            if fault.html is not None:
                page = fault.html.encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            message = "Too many requests" if fault.status == 429 else "Internal error"
            self._json(fault.status, self._error_body(url.path, message, "api_error"), headers)
            return
        if url.path == "/oauth/token" and method == "POST":
            self._token(parse_qs(raw.decode()))
        elif url.path.startswith("/v1/"):
            self._stripe(url.path, query)
        elif url.path.startswith("/crm/v3/objects/"):
            self._hubspot(method, url.path, query, body)
        elif url.path.startswith("/crm/v4/associations/") and method == "POST":
            self._hubspot_batch_associations(url.path, body or {})
        elif url.path.startswith("/crm/v4/objects/"):
            self._hubspot_associations(url.path, query)
        elif url.path.startswith("/api/"):
            self._generic(url.path, query)
        else:
            self._json(404, {"error": {"message": f"Unrecognized request URL ({url.path})"}})

    def _error_body(self, path: str, message: str, kind: str) -> dict[str, Any]:
        if path.startswith("/crm/"):
            return {"status": "error", "message": message, "category": kind.upper()}
        return {"error": {"message": message, "type": kind}}

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{time.monotonic_ns()}")
        for key, value in {**self._limit_headers, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None

    # -- OAuth 2.0 ----------------------------------------------------------------------------

    def _token(self, form: dict[str, list[str]]) -> None:
        api = self.server.api
        client_id = (form.get("client_id") or [""])[0]
        secret = (form.get("client_secret") or [""])[0]
        basic = self.headers.get("Authorization") or ""
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        grant = (form.get("grant_type") or [""])[0]
        if grant not in ("client_credentials", "refresh_token"):
            self._json(400, {"error": "unsupported_grant_type"})
        elif api.clients.get(client_id) != secret:
            self._json(401, {"error": "invalid_client", "error_description": "Bad client"})
        elif grant == "client_credentials":
            self._json(200, self._token_body())
        else:
            sent = (form.get("refresh_token") or [""])[0]
            refresh = api.use_refresh_token(sent)
            if refresh is None:
                self._json(
                    400,
                    {
                        "status": "BAD_REFRESH_TOKEN",
                        "message": f"missing or unknown refresh token {sent}",
                        "correlationId": "c0ffee00-0000-4000-8000-000000000001",
                    },
                )
            else:
                self._json(200, {**self._token_body(), "refresh_token": refresh})

    def _token_body(self) -> dict[str, Any]:
        api = self.server.api
        return {
            "access_token": api.issue_token(),
            "token_type": "bearer",
            "expires_in": int(api.token_ttl),
        }

    # -- Stripe -------------------------------------------------------------------------------

    def _stripe(self, path: str, query: dict[str, str]) -> None:
        api = self.server.api
        key = self._bearer()
        if key not in api.stripe_keys:
            message = (
                f"Invalid API Key provided: {key}"
                if key
                else "You did not provide an API key. You need to provide your API key in the"
                " Authorization header, using Bearer auth."
            )
            self._json(401, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        collection = path[len("/v1/") :].strip("/")
        with api.lock:
            records = list(api.stripe.get(collection, []))
        for op in ("gte", "gt", "lte", "lt"):
            bound = query.get(f"created[{op}]")
            if bound is not None:
                b = int(bound)
                test = {
                    "gte": lambda c, b=b: c >= b,
                    "gt": lambda c, b=b: c > b,
                    "lte": lambda c, b=b: c <= b,
                    "lt": lambda c, b=b: c < b,
                }[op]
                records = [r for r in records if test(r["created"])]
        if query.get("type"):  # the events list's filter
            records = [r for r in records if r.get("type") == query["type"]]
        records = self._stripe_event_types(records)
        records.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        after = query.get("starting_after")
        if after:
            ids = [r["id"] for r in records]
            if after not in ids:
                self._json(
                    400,
                    {
                        "error": {
                            "message": f"No such object: '{after}'",
                            "type": "invalid_request_error",
                            "param": "starting_after",
                        }
                    },
                )
                return
            records = records[ids.index(after) + 1 :]
        limit = min(int(query.get("limit", 10)), 100)
        self._json(
            200,
            {
                "object": "list",
                "url": path,
                "has_more": len(records) > limit,
                "data": records[:limit],
            },
        )

    def _stripe_event_types(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events list's `types[]` filter: any of up to 20 event types."""
        types = parse_qs(urlsplit(self.path).query).get("types[]")
        return [r for r in records if r.get("type") in types] if types else records

    # -- HubSpot ------------------------------------------------------------------------------

    def _hubspot_refused(self) -> bool:
        """Answers 401 and says True when the request has no valid token."""
        api = self.server.api
        token = self._bearer()
        if not (token in api.hubspot_tokens or (token and api.token_valid(token))):
            self._json(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found. This API supports OAuth"
                    " 2.0 authentication and you can find more details at"
                    " https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "correlationId": "c0ffee00-0000-4000-8000-000000000000",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
            return True
        return False

    def _hubspot(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        api = self.server.api
        if self._hubspot_refused():
            return
        parts = path[len("/crm/v3/objects/") :].strip("/").split("/")
        held = api.hubspot_archived if query.get("archived") == "true" else api.hubspot
        with api.lock:
            records = [json.loads(json.dumps(r)) for r in held.get(parts[0], [])]
        if method == "POST" and parts[1:] == ["search"]:
            self._hubspot_search(path, records, body or {})
            return
        records.sort(key=lambda r: int(r["id"]))
        after = query.get("after")
        if after:
            records = [r for r in records if int(r["id"]) > int(after)]
        limit = min(int(query.get("limit", 10)), 100)
        page: dict[str, Any] = {"results": records[:limit]}
        if len(records) > limit:
            last = records[limit - 1]["id"]
            link = f"{self.server.base_url}{path}?{urlencode({'after': last, 'limit': limit})}"
            page["paging"] = {"next": {"after": last, "link": link}}
        self._json(200, page)

    def _hubspot_search(self, path: str, records: list[dict[str, Any]], body: dict) -> None:
        for group in body.get("filterGroups") or [{}]:
            for f in group.get("filters", []):
                name, op = f["propertyName"], f["operator"]
                if name not in ("hs_lastmodifieddate", "lastmodifieddate"):
                    continue
                value = _ms(str(f["value"]))
                test = {
                    "GTE": lambda v, b=value: v >= b,
                    "GT": lambda v, b=value: v > b,
                    "LTE": lambda v, b=value: v <= b,
                    "LT": lambda v, b=value: v < b,
                }[op]
                records = [r for r in records if test(_ms(r["properties"]["hs_lastmodifieddate"]))]
        records.sort(key=lambda r: (_ms(r["properties"]["hs_lastmodifieddate"]), int(r["id"])))
        offset, limit = int(body.get("after") or 0), min(int(body.get("limit") or 10), 200)
        window = self.server.api.search_window
        if offset + limit > window:
            self._json(
                400,
                {
                    "status": "error",
                    "message": f"There was a problem with the request. Search results are"
                    f" limited to {window} total results.",
                    "category": "VALIDATION_ERROR",
                },
            )
            return
        page: dict[str, Any] = {"total": len(records), "results": records[offset : offset + limit]}
        if offset + limit < len(records):
            page["paging"] = {"next": {"after": str(offset + limit)}}
        self._json(200, page)

    def _hubspot_associations(self, path: str, query: dict[str, str]) -> None:
        """CRM v4 `GET /crm/v4/objects/<from>/<id>/associations/<to>`: `results` of
        `{toObjectId, associationTypes: [{category, typeId, label}]}`, paged by `after`."""
        api = self.server.api
        if self._hubspot_refused():
            return
        parts = path[len("/crm/v4/objects/") :].strip("/").split("/")
        if len(parts) != 4 or parts[2] != "associations":
            self._json(404, {"status": "error", "message": f"no route {path}"})
            return
        from_type, from_id, _, to_type = parts
        with api.lock:
            found = [
                a
                for a in api.hubspot_associations
                if (a["from_type"], a["from_id"], a["to_type"]) == (from_type, from_id, to_type)
            ]
        found.sort(key=lambda a: int(a["to_id"]))
        offset, limit = int(query.get("after") or 0), min(int(query.get("limit") or 500), 500)
        results = [_association(a) for a in found[offset : offset + limit]]
        page: dict[str, Any] = {"results": results}
        if offset + limit < len(found):
            page["paging"] = {"next": {"after": str(offset + limit)}}
        self._json(200, page)

    def _hubspot_batch_associations(self, path: str, body: dict[str, Any]) -> None:
        """CRM v4 `POST /crm/v4/associations/<from>/<to>/batch/read`: for each input `{id,
        after?}` a result `{from: {id}, to: [...], paging?}`, its `to` paged past
        `association_page` by an opaque `paging.next.after` sent back beside the id; an id with
        no associations (HubSpot cannot tell one that does not exist) is an error instead, and
        any error makes the answer a 207 Multi-Status."""
        api = self.server.api
        if self._hubspot_refused():
            return
        parts = path[len("/crm/v4/associations/") :].strip("/").split("/")
        inputs = body.get("inputs")
        if len(parts) != 4 or parts[2:] != ["batch", "read"]:
            self._json(404, {"status": "error", "message": f"no route {path}"})
            return
        if not isinstance(inputs, list) or not 0 < len(inputs) <= 1000:
            self._json(
                400,
                {
                    "status": "error",
                    "message": "Invalid input: inputs must hold between 1 and 1000 ids",
                    "category": "VALIDATION_ERROR",
                },
            )
            return
        from_type, to_type = parts[:2]
        started = _iso(dt.datetime.fromtimestamp(time.time() + api.clock_offset, UTC))
        held: dict[str, list[dict[str, Any]]] = {}
        with api.lock:
            for a in api.hubspot_associations:
                if (a["from_type"], a["to_type"]) == (from_type, to_type):
                    held.setdefault(a["from_id"], []).append(a)
        results, errors = [], []
        for item in inputs:
            from_id = str(item["id"])
            if from_id in api.association_errors:
                errors.append(api.association_errors[from_id])
                continue
            found = held.get(from_id, [])
            if not found:
                errors.append(_no_associations(from_type, from_id, to_type))
                continue
            found.sort(key=lambda a: int(a["to_id"]))
            offset = int(base64.b64decode(item["after"])) if item.get("after") else 0
            limit = api.association_page
            result: dict[str, Any] = {
                "from": {"id": from_id},
                "to": [_association(a) for a in found[offset : offset + limit]],
            }
            if offset + limit < len(found):
                token = base64.b64encode(str(offset + limit).encode()).decode()
                result["paging"] = {"next": {"after": token, "link": None}}
            results.append(result)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": started,
        }
        if errors:
            answer |= {"numErrors": len(errors), "errors": errors}
        self._json(207 if errors else 200, answer)

    # -- generic ------------------------------------------------------------------------------

    def _generic_authorized(self, query: dict[str, str]) -> bool:
        api = self.server.api
        token = self._bearer()
        if token and (api.token_valid(token) or token in api.hubspot_tokens):
            return True
        if self.headers.get("X-Api-Key") == api.api_key or query.get("api_key") == api.api_key:
            return True
        basic = self.headers.get("Authorization") or ""
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            return (user, password) == api.basic
        return False

    def _generic(self, path: str, query: dict[str, str]) -> None:
        api = self.server.api
        if not self._generic_authorized(query):
            self._json(401, {"error": "invalid_token", "error_description": "Unauthorized"})
            return
        style = path.split("/")[2]
        with api.lock:
            items = sorted(api.items, key=lambda r: r["id"])
        since = query.get("updated_since")
        if since:
            items = [r for r in items if _ms(r["updated_at"]) >= _ms(since)]
        keep = {k: v for k, v in query.items() if k in ("updated_since", "api_key")}
        if style == "page_number":
            page, size = int(query.get("page", 1)), int(query.get("per_page", 10))
            self._json(200, {"items": items[(page - 1) * size : page * size], "page": page})
        elif style == "offset":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 10))
            self._json(200, {"items": items[offset : offset + limit], "total": len(items)})
        elif style == "next_url":
            start, limit = int(query.get("cursor", 0)), int(query.get("limit", 10))
            following = None
            if start + limit < len(items):
                # Relative, as many APIs give it: the client resolves it against the page's URL.
                following = f"{path}?{urlencode({**keep, 'cursor': start + limit, 'limit': limit})}"
            self._json(200, {"items": items[start : start + limit], "next": following})
        elif style == "link_header":
            page, size = int(query.get("page", 1)), int(query.get("per_page", 10))
            headers = {}
            if page * size < len(items):
                nxt = f"{self.server.base_url}{path}?{urlencode({**keep, 'page': page + 1, 'per_page': size})}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            self._json(200, items[(page - 1) * size : page * size], headers)
        else:
            self._json(404, {"error": {"message": f"no style {style!r}"}})


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeApi, cert: Path, key: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.api = api
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeServer:
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def serve(directory: Path) -> tuple[FakeServer, Path]:
    """A started server with a fresh FakeApi and its CA file (the self-signed certificate)."""
    cert, key = make_certificate(directory)
    return FakeServer(FakeApi(), cert, key).start(), cert


# -- as a background process (the demo, the bench) ---------------------------------------------


def seed_bench_charges(api: FakeApi, n: int, created: int = 1_767_225_600) -> None:
    """n Stripe charges shaped like real ones (nested billing details, card, metadata), one
    per second from `created`: the bench's payload, built without per-object locking."""
    charges = api.stripe.setdefault("charges", [])
    for i in range(n):
        amount = 500 + (i * 37) % 20_000
        charges.append(
            {
                "id": f"ch_{i + 1:024d}",
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "balance_transaction": f"txn_{i + 1:024d}",
                "billing_details": {"email": f"customer{i % 5000}@example.com", "name": None},
                "captured": True,
                "created": created + i,
                "currency": "eur",
                "customer": f"cus_{i % 5000:014d}",
                "description": f"Order {i + 1}",
                "failure_code": None,
                "livemode": False,
                "metadata": {"order_id": str(i + 1)},
                "paid": True,
                "payment_method_details": {
                    "type": "card",
                    "card": {"brand": "visa", "last4": "4242"},
                },
                "receipt_email": f"customer{i % 5000}@example.com",
                "refunded": False,
                "status": "succeeded",
            }
        )


class IndexedStripeHandler(Handler):
    """Stripe lists served from an index built once: a page costs its own records, not a sort of
    the whole collection, so a bench of 200k records measures the client. Only the unfiltered
    list (`limit`, `starting_after`) is indexed; anything else is the plain route's."""

    _index: dict[str, tuple[list[dict[str, Any]], dict[str, int]]] = {}  # noqa: RUF012

    def _stripe(self, path: str, query: dict[str, str]) -> None:
        api, collection = self.server.api, path[len("/v1/") :].strip("/")
        if set(query) - {"limit", "starting_after"} or self._bearer() not in api.stripe_keys:
            super()._stripe(path, query)
            return
        with api.lock:
            if collection not in self._index:
                ordered = sorted(
                    api.stripe.get(collection, []),
                    key=lambda r: (r["created"], r["id"]),
                    reverse=True,
                )
                self._index[collection] = ordered, {r["id"]: i for i, r in enumerate(ordered)}
        ordered, position = self._index[collection]
        start = position[query["starting_after"]] + 1 if query.get("starting_after") else 0
        limit = min(int(query.get("limit", 10)), 100)
        page = ordered[start : start + limit]
        more = start + limit < len(ordered)
        self._json(200, {"object": "list", "url": path, "has_more": more, "data": page})


def main() -> None:
    """Serve the Stripe-like API until killed, printing one JSON line once it listens:
    `{"base_url", "ca_bundle", "stripe_key"}`. `--stripe-data FILE` serves the collections of
    a JSON file (`{"charges": [...]}`, as the demo writes them); `--bench N` serves N charges."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])  # type: ignore[union-attr]
    parser.add_argument("--dir", type=Path, required=True, help="its certificate goes here")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stripe-data", type=Path)
    parser.add_argument("--bench", type=int, default=0)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    api = FakeApi()
    if args.stripe_data is not None and args.stripe_data.exists():
        api.stripe = json.loads(args.stripe_data.read_text())
    if args.bench:
        seed_bench_charges(api, args.bench)
    cert, key = make_certificate(args.dir)
    server = FakeServer(api, cert, key, args.port)
    if args.bench:
        server.RequestHandlerClass = IndexedStripeHandler
    ready = {
        "base_url": server.base_url,
        "ca_bundle": str(cert),
        "stripe_key": next(iter(api.stripe_keys)),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    serve_until_stopped(server)


if __name__ == "__main__":
    main()
