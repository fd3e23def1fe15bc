"""How a JSON REST API is declared: the YAML's `rest:` block of a `type: rest` source.

One model serves the catalog (validation, `dg check defs`) and the engine (which reads it when a
sync opens the source): pydantic only, no Dagster. Secrets are environment-variable *names*.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The engine's logical types (`sync/schema.py`), spelled here so the catalog checks a declared
# type without importing pyarrow.
TYPE_NAMES = frozenset(
    "boolean int16 int32 int64 float32 float64 string json uuid date time timestamp timestamptz"
    " binary".split()
)
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


def type_problem(label: str) -> str | None:
    """Why `label` is not a column type, or None when it is one."""
    if label in TYPE_NAMES or _DECIMAL.match(label.strip()):
        return None
    return f"'{label}' is not a type (one of {', '.join(sorted(TYPE_NAMES))} or decimal(p,s))"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- authentication ---------------------------------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"]


class BearerAuth(_Model):
    """`Authorization: Bearer <token>` (Stripe secret keys, HubSpot private-app tokens)."""

    type: Literal["bearer"]
    token_env: str


class ApiKeyAuth(_Model):
    """A key sent as a header or a query parameter."""

    type: Literal["api_key"]
    key_env: str
    name: str = "X-Api-Key"
    """The header or query parameter carrying the key."""
    location: Literal["header", "query"] = "header"


class BasicAuth(_Model):
    type: Literal["basic"]
    username_env: str
    password_env: str | None = None


class OAuth2ClientCredentials(_Model):
    """OAuth 2.0 client credentials (RFC 6749 4.4): a token fetched from `token_url`, fetched
    again when it expires or the API answers 401."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id_env: str
    client_secret_env: str
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "basic"
    """Send the client id and secret as HTTP Basic (the RFC's default) or in the form body."""


class OAuth2RefreshToken(_Model):
    """OAuth 2.0 refresh-token grant (RFC 6749 6; HubSpot's OAuth apps): the access token is
    obtained from `token_url` with the refresh token, again when it expires or the API answers
    401. A refresh token the server rotates (returns a new one) is used for the next refresh of
    the same run; it is not written back to the environment variable."""

    type: Literal["oauth2_refresh_token"]
    token_url: str
    client_id_env: str
    client_secret_env: str
    refresh_token_env: str
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "body"
    """HubSpot takes the client id and secret in the form body; `basic` sends HTTP Basic."""


OAuth2 = OAuth2ClientCredentials | OAuth2RefreshToken

Auth = Annotated[
    NoAuth | BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials | OAuth2RefreshToken,
    Field(discriminator="type"),
]


# -- pagination -------------------------------------------------------------------------------


class NoPaging(_Model):
    type: Literal["none"]


class CursorPaging(_Model):
    """The last record's field is the next request's parameter while the body says there is
    more (Stripe: `starting_after` = last `id`, `has_more`)."""

    type: Literal["cursor"]
    param: str = "starting_after"
    from_record: str = "id"
    has_more: str = "has_more"
    """Dotted path of the body's "more pages" flag."""


class TokenPaging(_Model):
    """A token from the body is the next request's parameter, until the body has none
    (HubSpot: `paging.next.after` -> `after`)."""

    type: Literal["token"]
    from_body: str
    param: str
    location: Literal["query", "body"] = "query"
    """`body`: the token goes into the JSON body of a POST (HubSpot search)."""


class NextUrlPaging(_Model):
    """The body holds the next page's full URL (or path), until it is empty."""

    type: Literal["next_url"]
    from_body: str = "next"


class LinkHeaderPaging(_Model):
    """The `Link` header's `rel="next"` URL (RFC 8288; GitHub, Shopify ...)."""

    type: Literal["link_header"]


class PageNumberPaging(_Model):
    """`page=1, 2, ...` until a page holds fewer than `size` records."""

    type: Literal["page_number"]
    param: str = "page"
    start: int = 1
    size_param: str | None = "per_page"
    size: int = 100


class OffsetPaging(_Model):
    """`offset=0, limit, 2*limit, ...` until a page holds fewer than `limit` records."""

    type: Literal["offset"]
    param: str = "offset"
    limit_param: str = "limit"
    limit: int = 100


class KeysetPaging(_Model):
    """Every page is a new query from the last record's time field (HubSpot CRM search, sorted
    ascending on `hs_lastmodifieddate`). The bound is written where `incremental:` says, so a
    search never pages past its result window (HubSpot: 10,000) and a record changing while it
    is read cannot shift a later one out of reach, as offset paging can. Records sharing the
    bound's instant already read are skipped by `key`; more than a page of them are paged by
    the body's offset token. Records changed after the first response (its `Date`, less a
    second) are left to the next run, so none is read twice."""

    type: Literal["keyset"]
    from_record: str
    """Dotted path of the ascending time field, e.g. `properties.hs_lastmodifieddate`."""
    key: str = "id"
    from_body: str = "paging.next.after"
    """The body's "more results" offset token: present while the query has more."""
    param: str = "after"
    location: Literal["query", "body"] = "body"


Paging = Annotated[
    NoPaging
    | CursorPaging
    | TokenPaging
    | KeysetPaging
    | NextUrlPaging
    | LinkHeaderPaging
    | PageNumberPaging
    | OffsetPaging,
    Field(discriminator="type"),
]


# -- endpoints --------------------------------------------------------------------------------


class Incremental(_Model):
    """How the stream's lower cursor bound (its last cursor minus the lookback) reaches the API.

    The API must return every record whose cursor is at or after the value (an inclusive
    filter): records sharing the last second with the cursor are read again and merged, never
    missed. Records outside `[lower, upper)` are dropped on arrival, so a coarse filter is safe.
    """

    param: str | None = None
    """Query parameter given the bound, e.g. Stripe's `created[gte]`."""
    body: dict[str, Any] | None = None
    """JSON merged into the request body when there is a bound; the string "{lower}" in it is
    replaced by the bound (HubSpot search `filterGroups`)."""
    format: Literal["unix", "unix_ms", "iso", "raw"] = "iso"
    """How a time bound is written: epoch seconds (floored), milliseconds, ISO 8601 UTC."""


class Deletes(_Model):
    """Where an endpoint's deletions are listed: another endpoint of the source whose records
    each name one deleted record (Stripe: `/v1/events?type=customer.deleted`), read from the
    stream's lower cursor bound through that endpoint's own `incremental:`."""

    endpoint: str
    keys: dict[str, str]
    """Each primary-key column and its dotted path in a deletion record (`id: data.object.id`)."""


class Changes(_Model):
    """Where an endpoint's updates are listed: another endpoint of the source whose records
    each carry one changed record whole (Stripe: `/v1/events?types[]=customer.updated`, the
    event's `data.object`), read from the stream's lower cursor bound through that endpoint's
    own `incremental:`. An endpoint listed by an immutable field (Stripe's `created`) never
    re-reads an old record; its changes reach the warehouse this way, merged with the rows."""

    endpoint: str
    record: str = "data.object"
    """Dotted path of the changed record in a listed one."""
    key: str = "id"
    """Dotted path of the record's identity in the changed record: one record changed several
    times lands once, as its latest change."""
    time: str = "created"
    """Dotted path of when the change happened, in a listed record: the latest wins."""
    order: Literal["newest_first", "oldest_first"] = "newest_first"
    """How the listing orders changes of the same `time` (Stripe lists newest first)."""


class ParentBatch(_Model):
    """Many parent records per request: a batch read, whose JSON body lists the parents
    (HubSpot CRM v4 `POST /crm/v4/associations/<from>/<to>/batch/read`, `{"inputs": [{"id"}]}`)
    and whose answer holds one result per parent, each with its own list of records.

    A parent the answer leaves out has no records. Where the answer lists per-parent errors
    (`errors:`; HubSpot does, in a 207 Multi-Status), an error matching `no_records` is how the
    API says a parent has none (HubSpot: no associations, or no such record); any other fails
    the run, since that parent's records would be missing. A result with more records than one
    answer holds carries its own next-page token; those parents are asked again together, each
    input with its token, until no result has one."""

    size: int = Field(100, gt=0)
    """Parents per request (HubSpot: at most 1,000)."""
    key: str = "id"
    """Dotted path of the parent's identity in its record, sent as `input`."""
    inputs: str = "inputs"
    """Dotted path in the JSON body of the list of inputs, one per parent."""
    input: str = "id"
    """The key of the parent's identity in its input: `{"id": "<key>"}`."""
    result_key: str = "from.id"
    """Dotted path in a result of the identity of the parent it answers."""
    result_records: str = "to"
    """Dotted path in a result of its records, one row each (with the `parent_fields`)."""
    result_next: str | None = None
    """Dotted path in a result of its next-page token (HubSpot: `paging.next.after`)."""
    next_param: str = "after"
    """The key given that token in the parent's input, asking for its next page."""
    errors: str | None = None
    """Dotted path in the answer of its list of per-parent errors (HubSpot: `errors`)."""
    no_records: dict[str, list[str]] = {}
    """The errors that only say a parent has no records: an error whose value at each dotted
    path given is one of those listed (HubSpot: `subCategory:
    [crm.associations.NO_ASSOCIATIONS_FOUND]`)."""


class Endpoint(_Model):
    """One API resource read as one stream (`object:` names it)."""

    path: str
    """Relative to `base_url`; `{parent.<field>}` takes a field of the parent's record."""
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool | list[str | int | float | bool]] = {}
    """A list is sent as the parameter repeated (Stripe's `types[]`)."""
    body: dict[str, Any] | None = None
    """JSON body of a POST (e.g. a search's sorts and limit)."""
    records: str = ""
    """Dotted path of the record list in the body; empty: the body is the list."""
    paginator: Paging = NoPaging(type="none")
    incremental: Incremental | None = None
    columns: dict[str, str] = {}
    """Declared column types (`string`, `int64`, `float64`, `boolean`, `json`, `timestamptz`,
    `date`, `decimal(p,s)`); the others are inferred from the first page."""
    flatten: dict[str, str] = {}
    """Columns taken from a nested path, e.g. `email: properties.email`."""
    infer_columns: bool = True
    """False: only the declared (and flattened) columns, whatever else the records hold."""
    parent: str | None = None
    """Another endpoint of this source whose every record is a request of this one."""
    parent_fields: dict[str, str] = {}
    """Columns copied from the parent record, e.g. `invoice_id: id`."""
    parent_batch: ParentBatch | None = None
    """Many parents per request, listed in the body (a batch read), instead of one request
    per parent through `{parent.<field>}` in the path."""
    deletes: Deletes | None = None
    """Deletions applied by `incremental_merge` in the same transaction as the rows."""
    changes: Changes | None = None
    """Changed records merged with the rows by an incremental_merge run (after a first load);
    an incremental_append stream of this endpoint is refused."""


PresetName = Literal["stripe", "hubspot"]
PRESETS = get_args(PresetName)
_PRESET_DIR = Path(__file__).with_name("presets")


@cache
def preset_settings(name: str) -> dict[str, Any]:
    """A packaged declaration (`presets/<name>.yaml`), as the YAML's `rest:` block; its `x-`
    keys only hold the YAML anchors its endpoints share."""
    loaded = yaml.safe_load((_PRESET_DIR / f"{name}.yaml").read_text())
    return {k: v for k, v in loaded.items() if not k.startswith("x-")}


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """The preset's settings with the user's on top: every top-level setting replaces the
    preset's (`auth` whole), but `endpoints` merge by name, and inside an endpoint each
    setting given replaces the preset's one. An endpoint no stream names is never read, so
    there is nothing to leave out."""
    preset = preset_settings(data["preset"])
    merged = {**preset, **{k: v for k, v in data.items() if k != "endpoints"}}
    endpoints = {k: dict(v) for k, v in preset.get("endpoints", {}).items()}
    for name, override in (data.get("endpoints") or {}).items():
        if isinstance(override, dict):
            endpoints[name] = {**endpoints.get(name, {}), **override}
        else:
            endpoints[name] = override  # not a mapping: refused by the model, naming it
    merged["endpoints"] = endpoints
    return merged


class RestApi(_Model):
    """A JSON REST API: where it is, how to log in, how hard to push it, its endpoints."""

    preset: PresetName | None = Field(default=None, exclude=True)
    """A packaged declaration (`sync/sources/rest/presets/`) under the settings given here.
    Left out of a dump, which is the expanded declaration itself."""
    base_url: str | None = None
    base_url_env: str | None = None
    """Takes the base URL from this environment variable instead (one per deployment)."""
    auth: Auth = NoAuth(type="none")
    headers: dict[str, str] = {}
    endpoints: dict[str, Endpoint] = {}
    ca_bundle_env: str | None = None
    """A CA file to trust instead of the system's."""
    max_requests: int = 10_000
    """A run stops (and commits nothing) before sending more requests than this."""
    max_retries: int = 5
    """Retries of a request answered 429 or 5xx, or timing out."""
    backoff_seconds: float = 1.0
    """First wait between retries (doubling, with jitter), when no Retry-After says how long."""
    max_wait_seconds: float = 120.0
    """The longest wait honoured, Retry-After included; an API asking more fails the run."""
    timeout_seconds: float = 60.0
    batch_rows: int = 10_000
    """Records per Arrow batch handed to the warehouse."""

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return with_preset(data)
        return data
