"""A local Salesforce org over HTTPS, answering with Salesforce's documented shapes.

It implements what simple-salesforce calls for a sync: SOAP `login` (partner API), the OAuth 2.0
token endpoint (JWT bearer and client credentials), `sobjects/<name>/describe`, `query` and
`queryAll` with `nextRecordsUrl` paging, Bulk API 2.0 query jobs (create, poll, CSV results paged
with `Sforce-Locator` / `Sforce-NumberOfRecords`, abort), `limits`, the `Sforce-Limit-Info`
header on every API response, and the JSON error bodies (`[{"message", "errorCode"}]`).

simple-salesforce builds login URLs as `https://{domain}.salesforce.com/services/...`, so a
client reaches this server with the domain `127.0.0.1:<port>/login`: everything before
`/services/` in a path is ignored, as a real org ignores which My Domain alias was used.

Tests drive it in-process (`FakeOrg`: records, deletes, purges, injected faults); the demo runs
it as a background process: `python -m dw_pipelines.devservices.salesforce_fake --dir DIR`.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import io
import ipaddress
import json
import random
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from dw_pipelines.devservices.serving import serve_until_stopped

UTC = dt.UTC
ORG_ID = "00D5g000004ABCDEAA"
USER_ID = "0055g000009XYZWAAA"
KEY_PREFIX = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Lead": "00Q",
    "Case": "500",
    "Task": "00T",
    "User": "005",
}


# -- the org's data -----------------------------------------------------------------------------


def field_def(name: str, type_: str, nillable: bool = True, **extra: Any) -> dict[str, Any]:
    """One entry of `describe()['fields']` with the attributes a client reads."""
    base: dict[str, Any] = {
        "name": name,
        "label": name,
        "type": type_,
        "soapType": _SOAP_TYPES.get(type_, "xsd:string"),
        "nillable": nillable,
        "length": 255 if type_ in ("string", "picklist", "email", "url", "phone") else 0,
        "precision": 0,
        "scale": 0,
        "digits": 0,
        "custom": name.endswith("__c"),
        "calculated": False,
        "compoundFieldName": None,
        "filterable": True,
        "sortable": type_ not in ("textarea", "multipicklist", "address", "location"),
        "updateable": name not in _SYSTEM_FIELDS,
        "createable": name not in _SYSTEM_FIELDS,
        "referenceTo": [],
        "relationshipName": None,
    }
    base.update(extra)
    return base


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "long": "xsd:long",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "base64": "xsd:base64Binary",
    "address": "urn:address",
    "location": "urn:location",
}
_SYSTEM_FIELDS = {
    "Id",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CreatedById",
    "LastModifiedById",
}


def system_fields() -> list[dict[str, Any]]:
    return [
        field_def("Id", "id", nillable=False, length=18),
        field_def("IsDeleted", "boolean", nillable=False),
        field_def("CreatedDate", "datetime", nillable=False),
        field_def("LastModifiedDate", "datetime", nillable=False),
        field_def("SystemModstamp", "datetime", nillable=False),
    ]


def address_fields(prefix: str) -> list[dict[str, Any]]:
    """A compound address field and its components, as describe() lists them."""
    compound = f"{prefix}Address"
    parts = [
        field_def(f"{prefix}{part}", "string", compoundFieldName=compound)
        for part in ("Street", "City", "State", "PostalCode", "Country")
    ]
    parts += [
        field_def(f"{prefix}{part}", "double", compoundFieldName=compound, precision=18, scale=15)
        for part in ("Latitude", "Longitude")
    ]
    return [*parts, field_def(compound, "address")]


def standard_objects() -> dict[str, list[dict[str, Any]]]:
    """Field lists of the objects the tests and the demo use (a realistic subset)."""
    return {
        "Account": [
            *system_fields(),
            field_def("Name", "string", nillable=False),
            field_def("Type", "picklist"),
            field_def("Industry", "picklist"),
            field_def("AnnualRevenue", "currency", precision=18, scale=0),
            field_def("NumberOfEmployees", "int", digits=8),
            field_def("Website", "url"),
            field_def("Phone", "phone"),
            field_def("Description", "textarea"),
            *address_fields("Billing"),
            field_def("OwnerId", "reference", referenceTo=["User"]),
            field_def("Rating__c", "percent", precision=5, scale=2),
            field_def("Tier__c", "multipicklist"),
            field_def("Logo__c", "base64"),
        ],
        "Contact": [
            *system_fields(),
            field_def("AccountId", "reference", referenceTo=["Account"]),
            field_def("FirstName", "string"),
            field_def("LastName", "string", nillable=False),
            field_def("Email", "email"),
            field_def("Phone", "phone"),
            field_def("Birthdate", "date"),
            field_def("HasOptedOutOfEmail", "boolean", nillable=False),
            *address_fields("Mailing"),
        ],
        "Opportunity": [
            *system_fields(),
            field_def("AccountId", "reference", referenceTo=["Account"]),
            field_def("Name", "string", nillable=False),
            field_def("StageName", "picklist", nillable=False),
            field_def("Amount", "currency", precision=18, scale=2),
            field_def("Probability", "percent", precision=3, scale=0),
            field_def("CloseDate", "date", nillable=False),
            field_def("IsClosed", "boolean", nillable=False),
            field_def("IsWon", "boolean", nillable=False),
        ],
        "Lead": [
            *system_fields(),
            field_def("FirstName", "string"),
            field_def("LastName", "string", nillable=False),
            field_def("Company", "string", nillable=False),
            field_def("Status", "picklist", nillable=False),
            field_def("LeadSource", "picklist"),
            field_def("Email", "email"),
            field_def("IsConverted", "boolean", nillable=False),
        ],
        "Task": [
            *system_fields(),
            field_def("Subject", "combobox"),
            field_def("ActivityDate", "date"),
            field_def("ReminderTime__c", "time"),
            field_def("CallDurationInSeconds", "int", digits=9),
        ],
    }


@dataclass
class Fault:
    """An error the next matching request(s) get instead of their answer."""

    path: str  # matched as a substring of the request's path and query string
    status: int
    body: Any
    times: int = 1
    method: str | None = None
    # With status 0: the request takes effect but its answer never comes (a lost response).
    after: bool = False


@dataclass
class BulkJob:
    id: str
    object: str
    operation: str
    query: str
    rows: list[dict[str, Any]]
    fields: list[str]
    polls_left: int
    state: str = "UploadComplete"
    error: str | None = None
    deliver: int | None = None  # a fault: deliver this many rows whatever the header says
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(UTC))


# The record values JSON has no type for, written as {"$<type>": text}.
_TAGGED: dict[str, Any] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "decimal": Decimal,
}


def _encode(value: Any) -> dict[str, str]:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"the fake org cannot save a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((key, text),) = obj.items()
        if key.startswith("$") and key[1:] in _TAGGED:
            return _TAGGED[key[1:]](text)
    return obj


@dataclass
class FakeOrg:
    """The org's state. Methods are what tests call to change it between syncs."""

    username: str = "integration@example.com"
    password: str = "s3cret-Pa55"
    security_token: str = "TOKENabc123"
    consumer_key: str = "3MVG9fake.consumer.key"
    consumer_secret: str = "fake-consumer-secret-42"
    jwt_public_key: bytes | None = None
    api_version: str = "62.0"
    daily_api_max: int = 15000
    api_used: int = 0
    page_size: int = 2000
    bulk_polls: int = 1  # polls answered InProgress before a job completes
    jobs_page_size: int = 1000  # jobs per page of `GET jobs/query`
    bulk_unsupported: set[str] = field(default_factory=lambda: {"Task"})
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=standard_objects)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)
    ports: list[tuple[str, int]] = field(default_factory=list)  # (path, client port) per call
    faults: list[Fault] = field(default_factory=list)
    # object -> fail | timeout | short (a page with fewer rows than its header) | miscount
    bulk_faults: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, BulkJob] = field(default_factory=dict)
    cursors: dict[str, tuple[list[dict[str, Any]], list[str], str]] = field(default_factory=dict)
    clock: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_id: int = 0
    # While an unset Event: every API request waits for it (a test counts who is in flight).
    gate: threading.Event | None = None
    held: int = 0
    most_held: int = 0

    # -- data ---------------------------------------------------------------------------------

    def tick(self) -> dt.datetime:
        """The org's clock, one millisecond per write, so SystemModstamp orders every change."""
        self.clock += dt.timedelta(milliseconds=1)
        return self.clock

    def new_id(self, obj: str) -> str:
        prefix = KEY_PREFIX.get(obj, "a0" + chr(65 + len(obj) % 26))
        self.last_id += 1
        return f"{prefix}5g{self.last_id:010d}AAA"

    def insert(self, obj: str, **values: Any) -> str:
        with self.lock:
            stamp = self.tick()
            record_id = values.pop("Id", None) or self.new_id(obj)
            record = {f["name"]: None for f in self.fields(obj) if f["type"] != "address"}
            defaults = {"IsDeleted": False, "HasOptedOutOfEmail": False, "IsClosed": False}
            defaults |= {"IsWon": False, "IsConverted": False}
            record.update({k: v for k, v in defaults.items() if k in record})
            record.update(values)
            record.update(
                Id=record_id,
                CreatedDate=values.get("CreatedDate", stamp),
                LastModifiedDate=stamp,
                SystemModstamp=stamp,
            )
            self.records.setdefault(obj, {})[record_id] = record
            return record_id

    def update(self, obj: str, record_id: str, **values: Any) -> None:
        with self.lock:
            stamp = self.tick()
            self.records[obj][record_id].update(
                values, LastModifiedDate=stamp, SystemModstamp=stamp
            )

    def delete(self, obj: str, record_id: str) -> None:
        """To the recycle bin: gone from `query`, visible to `queryAll` with IsDeleted = true."""
        with self.lock:
            stamp = self.tick()
            self.records[obj][record_id].update(IsDeleted=True, SystemModstamp=stamp)

    def undelete(self, obj: str, record_id: str) -> None:
        with self.lock:
            stamp = self.tick()
            self.records[obj][record_id].update(IsDeleted=False, SystemModstamp=stamp)

    def purge(self, obj: str, record_id: str) -> None:
        """Emptied from the recycle bin (or hard-deleted): no API shows it any more."""
        with self.lock:
            del self.records[obj][record_id]

    def live(self, obj: str) -> list[dict[str, Any]]:
        return [r for r in self.records.get(obj, {}).values() if not r["IsDeleted"]]

    def fields(self, obj: str) -> list[dict[str, Any]]:
        return self.objects[obj]

    def remove_field(self, obj: str, name: str) -> None:
        """An admin deletes a field: describe stops listing it and queries naming it fail."""
        with self.lock:
            self.objects[obj] = [f for f in self.objects[obj] if f["name"] != name]
            for record in self.records.get(obj, {}).values():
                record.pop(name, None)

    def fail(self, path: str, status: int, error_code: str, message: str, times: int = 1) -> None:
        self.faults.append(
            Fault(path, status, [{"message": message, "errorCode": error_code}], times)
        )

    def lose_answer(self, path: str, method: str | None = None, times: int = 1) -> None:
        """The next matching request(s) take effect, but their answer never reaches the client."""
        self.faults.append(Fault(path, 0, None, times, method, after=True))

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def api_calls(self, kind: str | None = None) -> int:
        """API requests served (logins are not API requests), or those whose path has `kind`."""
        return sum(
            1
            for _, path in self.calls
            if path.startswith("/services/data/") and (kind is None or kind in path)
        )

    def save(self, path: Path) -> None:
        """The org's data, kept between runs of the demo's fake (one process per run).

        JSON, not pickle: loading a pickle runs whatever code the file names, and this file
        sits in a directory anyone running the demo can write to.
        """
        with self.lock:
            state = {"records": self.records, "clock": self.clock, "last_id": self.last_id}
            path.write_text(json.dumps(state, default=_encode))

    def load(self, path: Path) -> None:
        state = json.loads(path.read_text(), object_hook=_decode)
        self.records, self.clock, self.last_id = state["records"], state["clock"], state["last_id"]

    def __repr__(self) -> str:
        counts = {obj: len(rows) for obj, rows in self.records.items()}
        return f"FakeOrg(records={counts}, api_used={self.api_used}, logins={self.logins})"

    # -- SOQL (the subset a sync sends) -------------------------------------------------------

    def run_soql(
        self, soql: str, include_deleted: bool
    ) -> tuple[str, list[str], list[dict[str, Any]], bool]:
        """(object, selected fields, matching records, is_count) or raise SoqlError."""
        match = _SOQL.match(soql)
        if not match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token in query: {soql[:80]}")
        obj = match["obj"]
        if obj not in self.objects:
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{soql[:60]}\n ^\nERROR at Row:1:Column:1\nsObject type '{obj}' is not"
                " supported. If you are attempting to use a custom object, be sure to append the"
                " '__c' after the entity name.",
            )
        known = {f["name"]: f for f in self.fields(obj)}
        select = [s.strip() for s in match["select"].split(",")]
        is_count = select == ["COUNT()"]
        names = [] if is_count else select
        for name in names:
            if name not in known:
                raise SoqlError("INVALID_FIELD", _no_such_column(soql, name, obj))
        rows = list(self.records.get(obj, {}).values())
        if not include_deleted:
            rows = [r for r in rows if not r["IsDeleted"]]
        for condition in filter(None, re.split(r"\s+AND\s+", match["where"] or "")):
            cmatch = _CONDITION.match(condition.strip())
            if not cmatch:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{condition}'")
            name, op, literal = cmatch["field"], cmatch["op"], cmatch["value"]
            if name not in known:
                raise SoqlError("INVALID_FIELD", _no_such_column(soql, name, obj))
            value = _literal(literal, known[name]["type"])
            rows = [r for r in rows if _compare(r.get(name), op, value)]
        if match["order"]:
            keys = [k.strip() for k in match["order"].split(",")]
            rows.sort(key=lambda r: tuple(_sort_key(r.get(k)) for k in keys))
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        return obj, names, rows, is_count


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>[\w\s,]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^(?P<field>\w+)\s*(?P<op>>=|<=|!=|=|<|>)\s*(?P<value>.+)$")


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _no_such_column(soql: str, name: str, obj: str) -> str:
    return (
        f"\n{soql[:60]}\n ^\nERROR at Row:1:Column:8\nNo such column '{name}' on entity '{obj}'."
        " If you are attempting to use a custom field, be sure to append the '__c' after the"
        " custom field name. Please reference your WSDL or the describe call for the"
        " appropriate names."
    )


def _literal(text: str, type_: str) -> Any:
    text = text.strip()
    if text.lower() == "null":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("'"):
        return text[1:-1].replace("\\'", "'")
    if type_ == "datetime":
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if type_ == "date":
        return dt.date.fromisoformat(text)
    return Decimal(text)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if value is not None else (1, 0)


# -- wire formats -------------------------------------------------------------------------------


def rest_value(value: Any) -> Any:
    """A value as the REST API's JSON writes it."""
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{value.microsecond // 1000:03d}+0000"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def csv_value(value: Any) -> str:
    """A value as Bulk API 2.0 CSV writes it: null is an empty field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{value.microsecond // 1000:03d}Z"
        )
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value.isoformat() if isinstance(value, dt.date) else value)


def to_csv(names: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(names)
    for row in rows:
        writer.writerow([csv_value(row.get(n)) for n in names])
    return out.getvalue()


# -- HTTP ---------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, without Nagle's delay: localhost calls take
    # microseconds instead of the 40 ms a delayed ACK costs.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None

    @property
    def org(self) -> FakeOrg:
        return self.server.org

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = (
            parts.path[parts.path.find("/services/") :]
            if "/services/" in parts.path
            else parts.path
        )
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.org.lock:
            self.org.calls.append((method, path))
            self.org.ports.append((path, self.client_address[1]))
            fault = next(
                (f for f in self.org.faults if f.path in self.path and f.method in (None, method)),
                None,
            )
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.org.faults.remove(fault)
        if fault is not None and fault.status == 0 and fault.after:
            # Served, but the answer is dropped and the connection hangs like a lost response.
            answer, self.wfile = self.wfile, io.BytesIO()
            try:
                self._serve(method, path, params, body)
            finally:
                self.wfile = answer
            self.server.stopping.wait(self.server.hang_seconds)
            self.close_connection = True
            return
        if fault is not None:
            if fault.status == 0:  # a fault that never answers: the client's timeout fires
                self.server.stopping.wait(self.server.hang_seconds)
                return
            self._json(fault.status, fault.body)
            return
        self._serve(method, path, params, body)

    def _serve(self, method: str, path: str, params: dict[str, str], body: bytes) -> None:
        try:
            if path.startswith("/services/Soap/u/"):
                return self._soap_login(body)
            if path == "/services/oauth2/token":
                return self._oauth_token(body)
            if path == "/services/oauth2/userinfo":
                return self._userinfo()
            if not path.startswith("/services/data/"):
                return self._json(
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                )
            if not self._authorized():
                return self._json(
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                )
            gate = self.org.gate
            if gate is not None:
                with self.org.lock:
                    self.org.held += 1
                    self.org.most_held = max(self.org.most_held, self.org.held)
                gate.wait()
                with self.org.lock:
                    self.org.held -= 1
            with self.org.lock:
                self.org.api_used += 1
            rest = path.split("/", 4)[4] if path.count("/") >= 4 else ""
            self._api(method, rest, params, body)
        except SoqlError as exc:
            self._json(400, [{"message": exc.message, "errorCode": exc.code}])

    # -- auth ---------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.org.sessions

    def _new_session(self) -> str:
        token = f"{ORG_ID}!AQ{base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('=')}"
        with self.org.lock:
            self.org.sessions.add(token)
            self.org.logins += 1
        return token

    def _soap_login(self, body: bytes) -> None:
        text = body.decode()
        user = _xml_text(text, "username")
        password = _xml_text(text, "password")
        org = self.org
        if user != escape(org.username) or password != escape(org.password + org.security_token):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
                ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
                ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
                ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
                "<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN:"
                " Invalid username, password, security token; or user locked out.</faultstring>"
                '<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN'
                "</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security"
                " token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail>"
                "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return self._send(500, fault.encode(), "text/xml; charset=utf-8")
        session = self._new_session()
        base = self.server.base_url
        version = org.api_version
        response = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
            ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse>'
            f"<result><metadataServerUrl>{base}/services/Soap/m/{version}/{ORG_ID}"
            "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{session}</sessionId><userId>{USER_ID}</userId><userInfo>"
            f"<organizationId>{ORG_ID}</organizationId><userName>{escape(org.username)}</userName>"
            "<userTimeZone>Europe/Paris</userTimeZone></userInfo></result></loginResponse>"
            "</soapenv:Body></soapenv:Envelope>"
        )
        self._send(200, response.encode(), "text/xml; charset=utf-8")

    def _oauth_token(self, body: bytes) -> None:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        org = self.org
        grant = form.get("grant_type")
        ok = False
        if grant == "client_credentials":
            expected = base64.b64encode(
                f"{org.consumer_key}:{org.consumer_secret}".encode()
            ).decode()
            ok = self.headers.get("Authorization") == f"Basic {expected}"
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and org.jwt_public_key:
            import jwt

            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    org.jwt_public_key,
                    algorithms=["RS256"],
                    options={"verify_aud": False},
                )
                ok = claims.get("iss") == org.consumer_key and claims.get("sub") == org.username
            except jwt.PyJWTError:
                ok = False
        if not ok:
            return self._json(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        self._json(
            200,
            {
                "access_token": self._new_session(),
                "instance_url": self.server.base_url,
                "id": f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": "1767600000000",
                "signature": "ZmFrZQ==",
            },
        )

    def _userinfo(self) -> None:
        if not self._authorized():
            return self._send(403, b"Bad_OAuth_Token", "text/plain")
        self._json(
            200,
            {
                "sub": f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}",
                "user_id": USER_ID,
                "organization_id": ORG_ID,
                "preferred_username": self.org.username,
            },
        )

    # -- REST and Bulk 2.0 --------------------------------------------------------------------

    def _api(self, method: str, rest: str, params: dict[str, str], body: bytes) -> None:
        org = self.org
        if rest in ("limits", "limits/"):
            return self._json(
                200,
                {
                    "DailyApiRequests": {
                        "Max": org.daily_api_max,
                        "Remaining": max(org.daily_api_max - org.api_used, 0),
                    },
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(org.jobs)},
                },
            )
        match = re.fullmatch(r"sobjects/(\w+)/describe/?", rest)
        if match:
            return self._describe(match[1])
        if rest in ("query", "query/", "queryAll", "queryAll/"):
            return self._query(params.get("q", ""), include_deleted=rest.startswith("queryAll"))
        match = re.fullmatch(r"(query|queryAll)/(\w+-\d+)", rest)
        if match:
            return self._query_more(match[2])
        if rest in ("jobs/query", "jobs/query/") and method == "POST":
            return self._create_job(json.loads(body or b"{}"))
        if rest in ("jobs/query", "jobs/query/") and method == "GET":
            return self._list_jobs(params)
        match = re.fullmatch(r"jobs/query/(\w+)(/results)?", rest)
        if match and match[1] in org.jobs:
            job = org.jobs[match[1]]
            if match[2]:
                return self._job_results(job, params)
            if method == "PATCH":
                job.state = json.loads(body).get("state", job.state)
            elif method == "DELETE":
                org.jobs.pop(job.id)
                return self._send(204, b"", "application/json")
            return self._json(200, self._job_info(job))
        self._json(
            404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        )

    def _describe(self, obj: str) -> None:
        if obj not in self.org.objects:
            return self._json(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        self._json(
            200,
            {
                "name": obj,
                "label": obj,
                "custom": obj.endswith("__c"),
                "queryable": True,
                "retrieveable": True,
                "replicateable": True,
                "keyPrefix": KEY_PREFIX.get(obj),
                "fields": self.org.fields(obj),
                "urls": {
                    "describe": f"/services/data/v{self.org.api_version}/sobjects/{obj}/describe"
                },
            },
        )

    def _query(self, soql: str, include_deleted: bool) -> None:
        with self.org.lock:
            obj, names, rows, is_count = self.org.run_soql(soql, include_deleted)
            if is_count:
                return self._json(200, {"totalSize": len(rows), "done": True, "records": []})
            snapshot = [{n: r.get(n) for n in names} for r in rows]
            locator = f"01g5g{uuid.uuid4().hex[:13]}"
            kind = "queryAll" if include_deleted else "query"
            self.org.cursors[locator] = (snapshot, names, obj)
        self._page(locator, 0, kind)

    def _query_more(self, token: str) -> None:
        locator, _, offset = token.rpartition("-")
        if locator not in self.org.cursors:
            return self._json(
                400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}]
            )
        self._page(locator, int(offset), "query")

    def _page(self, locator: str, offset: int, kind: str) -> None:
        rows, names, obj = self.org.cursors[locator]
        end = offset + self.org.page_size
        version = self.org.api_version
        records = [
            {
                "attributes": {
                    "type": obj,
                    "url": f"/services/data/v{version}/sobjects/{obj}/{r.get('Id')}",
                },
                **{n: rest_value(r.get(n)) for n in names},
            }
            for r in rows[offset:end]
        ]
        page: dict[str, Any] = {
            "totalSize": len(rows),
            "done": end >= len(rows),
            "records": records,
        }
        if end < len(rows):
            page["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{locator}-{end}"
        self._json(200, page)

    def _create_job(self, payload: dict[str, Any]) -> None:
        org = self.org
        operation = payload.get("operation")
        with org.lock:
            obj, names, rows, _ = org.run_soql(payload.get("query", ""), operation == "queryAll")
            if obj in org.bulk_unsupported:
                return self._json(
                    400,
                    [
                        {
                            "errorCode": "INVALIDENTITY",
                            "message": f"Entity '{obj}' is not supported by the Bulk API.",
                        }
                    ],
                )
            if any(
                f["type"] in ("address", "location") for f in org.fields(obj) if f["name"] in names
            ):
                return self._json(
                    400,
                    [
                        {
                            "errorCode": "API_ERROR",
                            "message": "Compound fields are not supported by Bulk API 2.0 query jobs.",
                        }
                    ],
                )
            job = BulkJob(
                id=f"7505g{uuid.uuid4().hex[:13]}",
                object=obj,
                operation=operation or "query",
                query=payload["query"],
                rows=[{n: r.get(n) for n in names} for r in rows],
                fields=names,
                polls_left=org.bulk_polls,
            )
            fault = org.bulk_faults.get(obj)
            if fault == "short":
                job.deliver = max(len(rows) - 1, 0)
            org.jobs[job.id] = job
        self._json(200, self._job_info(job))

    def _list_jobs(self, params: dict[str, str]) -> None:
        """`GET jobs/query`: the org's query jobs, `jobs_page_size` a page, `nextRecordsUrl`
        (with `queryLocator`) until `done`."""
        with self.org.lock:
            jobs = [self._job_record(job) for job in self.org.jobs.values()]
        if params.get("jobType") not in (None, "V2Query"):
            jobs = []
        start = int(params.get("queryLocator") or 0)
        end = start + self.org.jobs_page_size
        page: dict[str, Any] = {"done": end >= len(jobs), "records": jobs[start:end]}
        if end < len(jobs):
            page["nextRecordsUrl"] = (
                f"/services/data/v{self.org.api_version}/jobs/query?jobType=V2Query"
                f"&queryLocator={end}"
            )
        self._json(200, page)

    def _job_record(self, job: BulkJob) -> dict[str, Any]:
        """A job as the job list shows it (no counts, no error message)."""
        return {
            "id": job.id,
            "operation": job.operation,
            "object": job.object,
            "createdById": USER_ID,
            "createdDate": _sf_datetime(job.created),
            "systemModstamp": _sf_datetime(job.created),
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.org.api_version),
            "jobType": "V2Query",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }

    def _job_info(self, job: BulkJob) -> dict[str, Any]:
        fault = self.org.bulk_faults.get(job.object)
        if job.state in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            elif fault == "fail":
                job.state, job.error = (
                    "Failed",
                    "InternalServerError: the query job could not be completed",
                )
            elif fault != "timeout":
                job.state = "JobComplete"
        info = {
            **self._job_record(job),
            "numberRecordsProcessed": (len(job.rows) + (fault == "miscount"))
            if job.state == "JobComplete"
            else 0,
            "retries": 0,
            "totalProcessingTime": 42,
        }
        if job.error:
            info["errorMessage"] = job.error
        return info

    def _job_results(self, job: BulkJob, params: dict[str, str]) -> None:
        if job.state != "JobComplete":
            return self._json(
                400, [{"errorCode": "API_ERROR", "message": f"Job {job.id} is not complete"}]
            )
        size = int(params.get("maxRecords") or 50000)
        offset = int(base64.b64decode(params["locator"]).decode()) if params.get("locator") else 0
        end = min(offset + size, len(job.rows))
        delivered = job.rows[offset:end]
        if job.deliver is not None and end >= job.deliver:
            delivered = job.rows[offset : job.deliver]
        locator = base64.b64encode(str(end).encode()).decode() if end < len(job.rows) else "null"
        headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(end - offset)}
        self._send(200, to_csv(job.fields, delivered).encode(), "text/csv", headers)

    # -- plumbing -----------------------------------------------------------------------------

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json;charset=UTF-8")

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header(
            "Sforce-Limit-Info", f"api-usage={self.org.api_used}/{self.org.daily_api_max}"
        )
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _sf_datetime(value: dt.datetime) -> str:
    """Salesforce's JSON datetime form: `2026-01-05T09:00:00.000+0000`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _xml_text(text: str, tag: str) -> str:
    match = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", text, re.DOTALL)
    return match[1] if match else ""


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, org: FakeOrg, cert: Path, key: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.org = org
        self.hang_seconds: float | None = 5.0  # None: until the server stops
        self.stopping = threading.Event()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        """What to give simple-salesforce as `domain` to log in here."""
        return f"127.0.0.1:{self.port}/login"

    def start(self) -> FakeServer:
        # A short poll interval: stop() returns at once instead of after half a second.
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "salesforce-fake")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "salesforce_fake.pem", directory / "salesforce_fake.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# -- seed data ------------------------------------------------------------------------------------

_COMPANIES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
]
_SUFFIX = ["Corp", "Inc", "GmbH", "SAS", "Ltd", "Group"]
_FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Ken",
    "Frances",
]
_LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Torvalds",
    "Thompson",
    "Allen",
]
_CITIES = [("Paris", "FR"), ("Berlin", "DE"), ("Austin", "US"), ("London", "GB"), ("Lyon", "FR")]
_STAGES = [
    "Prospecting",
    "Qualification",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
]


def seed_demo(org: FakeOrg, accounts: int = 40, rng: random.Random | None = None) -> None:
    """Realistic accounts with their contacts and opportunities, plus unconverted leads."""
    rng = rng or random.Random(7)
    for n in range(accounts):
        city, country = rng.choice(_CITIES)
        name = f"{rng.choice(_COMPANIES)} {rng.choice(_SUFFIX)} {n + 1}"
        account = org.insert(
            "Account",
            Name=name,
            Type=rng.choice(["Customer - Direct", "Customer - Channel", "Prospect", "Partner"]),
            Industry=rng.choice(["Technology", "Retail", "Manufacturing", "Finance", "Healthcare"]),
            AnnualRevenue=Decimal(rng.randrange(1, 500) * 100_000),
            NumberOfEmployees=rng.randrange(5, 20_000),
            Website=f"https://www.{name.split()[0].lower()}{n + 1}.example",
            Phone=f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} 00",
            BillingStreet=f"{rng.randrange(1, 200)} Main Street",
            BillingCity=city,
            BillingCountry=country,
            BillingLatitude=Decimal(f"{rng.uniform(40, 52):.6f}"),
            BillingLongitude=Decimal(f"{rng.uniform(-5, 15):.6f}"),
            OwnerId=USER_ID,
            Rating__c=Decimal(f"{rng.uniform(0, 100):.2f}"),
            Tier__c=";".join(sorted(rng.sample(["Gold", "Silver", "Strategic", "SMB"], 2))),
        )
        for _ in range(rng.randrange(1, 5)):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            org.insert(
                "Contact",
                AccountId=account,
                FirstName=first,
                LastName=last,
                Email=f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.com",
                Birthdate=dt.date(
                    rng.randrange(1960, 2000), rng.randrange(1, 13), rng.randrange(1, 28)
                ),
                HasOptedOutOfEmail=rng.random() < 0.1,
                MailingCity=city,
                MailingCountry=country,
            )
        for k in range(rng.randrange(0, 4)):
            stage = rng.choice(_STAGES)
            org.insert(
                "Opportunity",
                AccountId=account,
                Name=f"{name} - deal {k + 1}",
                StageName=stage,
                Amount=Decimal(rng.randrange(5, 900) * 1000) + Decimal("0.50"),
                Probability=Decimal(100 if stage == "Closed Won" else rng.randrange(10, 90, 10)),
                CloseDate=dt.date(2026, rng.randrange(1, 13), rng.randrange(1, 28)),
                IsClosed=stage.startswith("Closed"),
                IsWon=stage == "Closed Won",
            )
    for _ in range(accounts // 2):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        org.insert(
            "Lead",
            FirstName=first,
            LastName=last,
            Company=f"{rng.choice(_COMPANIES)} {rng.choice(_SUFFIX)}",
            Status=rng.choice(
                ["Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"]
            ),
            LeadSource=rng.choice(["Web", "Phone Inquiry", "Partner Referral", "Trade Show"]),
            Email=f"{first.lower()}@lead.example",
        )


def seed_bench(org: FakeOrg, n: int) -> None:
    """n accounts with a dozen typical fields filled, fast (no per-insert work beyond a dict)."""
    template = {f["name"]: None for f in org.fields("Account") if f["type"] != "address"}
    accounts = org.records.setdefault("Account", {})
    for i in range(n):
        stamp = org.tick()
        record_id = org.new_id("Account")
        accounts[record_id] = template | {
            "Id": record_id,
            "IsDeleted": False,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "Name": f"Account {i}",
            "Type": "Customer - Direct",
            "Industry": "Technology",
            "AnnualRevenue": Decimal(1000 * (i % 997)),
            "NumberOfEmployees": i % 5000,
            "Website": f"https://www.account{i}.example",
            "Phone": "+33 1 23 45 67 89",
            "Description": "A long-standing customer with several subsidiaries, renewed yearly.",
            "BillingStreet": f"{i % 300} Main Street",
            "BillingCity": "Paris",
            "BillingCountry": "FR",
            "OwnerId": USER_ID,
            "Rating__c": Decimal("42.50"),
        }


def churn_demo(org: FakeOrg, rng: random.Random | None = None) -> None:
    """What a day in a CRM does: new leads, deals move on, a contact is deleted."""
    rng = rng or random.Random()
    for _ in range(3):
        org.insert(
            "Lead",
            LastName=rng.choice(_LAST),
            Company=rng.choice(_COMPANIES),
            Status="Open - Not Contacted",
        )
    deals = org.live("Opportunity")
    for deal in rng.sample(deals, min(3, len(deals))):
        org.update(
            "Opportunity", deal["Id"], StageName="Negotiation/Review", Probability=Decimal(80)
        )
    contacts = org.live("Contact")
    if contacts:
        org.delete("Contact", rng.choice(contacts)["Id"])


def main() -> None:
    """Serve a seeded org until killed; with --state, each start is a day later than the last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, required=True, help="certificate and state go here")
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--bench", type=int, default=0, help="serve this many plain accounts")
    args = parser.parse_args()
    org = FakeOrg(bulk_polls=1, daily_api_max=10**9)
    state = args.dir / "salesforce_org.json"
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.bench:
        seed_bench(org, args.bench)
    elif state.exists():
        org.load(state)
        org.clock += dt.timedelta(days=1)
        churn_demo(org)
    else:
        seed_demo(org, args.accounts)
    if not args.bench:
        org.save(state)
    cert, key = make_certificate(args.dir)
    server = FakeServer(org, cert, key, args.port)
    ready = {"port": server.port, "domain": server.domain, "ca_bundle": str(cert)}
    print(json.dumps(ready | {"username": org.username}), flush=True)
    serve_until_stopped(server)


if __name__ == "__main__":
    main()
