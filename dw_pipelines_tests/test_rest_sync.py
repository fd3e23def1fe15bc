"""REST API streams through the engine: every pagination style, incremental filters, retries,
errors, the request budget and authentication.

The fake APIs (Stripe-like, HubSpot-like, generic) serve HTTPS on a free port; the product's own
client (urllib3 + tenacity) talks to them; the warehouse is real (DuckDB, and PostgreSQL where
the test is about what lands in the table). Retry waits are recorded, never slept.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.sources.rest.client import RequestBudgetExhausted, RestApiError
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import (
    HUBSPOT_CONTACTS,
    HUBSPOT_CONTACTS_SEARCH,
    HUBSPOT_TOKEN,
    STRIPE_CUSTOMERS,
    STRIPE_KEY,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
EPOCH0 = int(T0.timestamp())


def ids(warehouse_url: str, table: str) -> list[str]:
    return [str(r[0]) for r in warehouse_rows(warehouse_url, f"SELECT id FROM {table} ORDER BY id")]


def add_customers(rest, n: int, created: int = EPOCH0, step: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        rest.api.stripe_add("customers", created=created + i * step, email=f"c{i}@example.com")
        for i in range(n)
    ]


# -- pagination ---------------------------------------------------------------------------------


def test_stripe_starting_after_pages_load_every_customer_exactly_once(rest, warehouse_url) -> None:
    # Several customers share a second: Stripe's order within it must not lose or repeat any.
    created = add_customers(rest, 10, step=0) + add_customers(rest, 7, created=EPOCH0 + 5)
    result = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, object="customers")
    assert result.rows_read == 17
    assert ids(warehouse_url, "api.customers") == sorted(created)
    pages = rest.api.requests_to("/v1/customers")
    assert any("starting_after=" in path for _, path, _ in pages)


def test_hubspot_after_token_pages_load_every_contact_exactly_once(rest, warehouse_url) -> None:
    made = [
        rest.api.hubspot_add("contacts", T0, email=f"p{i}@example.com", firstname=f"P{i}")
        for i in range(7)
    ]
    result = rest.sync(
        warehouse_url,
        {"contacts": HUBSPOT_CONTACTS},
        object="contacts",
        secrets={"token": HUBSPOT_TOKEN},
    )
    assert result.rows_read == 7
    assert ids(warehouse_url, "api.contacts") == sorted(made)
    emails = warehouse_rows(warehouse_url, "SELECT email FROM api.contacts ORDER BY id")
    assert [e[0] for e in emails] == [f"p{i}@example.com" for i in range(7)]


@pytest.mark.parametrize(
    ("style", "paginator", "records"),
    [
        ("page_number", {"type": "page_number", "size": 3}, "items"),
        ("offset", {"type": "offset", "limit": 3}, "items"),
        ("next_url", {"type": "next_url", "from_body": "next"}, "items"),
        ("link_header", {"type": "link_header"}, ""),
    ],
)
def test_each_pagination_style_loads_every_record_exactly_once(
    rest, duckdb_warehouse_url, style, paginator, records
) -> None:  # type: ignore[no-untyped-def]
    made = [rest.api.item_add(T0, name=f"item {i}") for i in range(10)]
    endpoint = {
        "path": f"/api/{style}/items",
        "params": {"limit": 3} if style == "next_url" else {"per_page": 3},
        "records": records,
        "paginator": paginator,
    }
    result = rest.sync(
        duckdb_warehouse_url,
        {"items": endpoint},
        object="items",
        settings={"auth": {"type": "api_key", "key_env": "K", "name": "X-Api-Key"}},
        secrets={"key": rest.api.api_key},
    )
    assert result.rows_read == 10
    assert sorted(ids(duckdb_warehouse_url, "api.items")) == sorted(str(i) for i in made)


# -- incremental --------------------------------------------------------------------------------


def test_second_run_reads_from_the_cursor_and_misses_nothing_created_in_its_second(
    rest, warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 5)
    spec = {"object": "customers", "mode": "incremental_merge", "cursor": "created"}
    first = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, **spec)
    last = EPOCH0 + 4
    assert first.cursor_after == dt.datetime.fromtimestamp(last, UTC)
    # Created later in the very second the cursor stopped at, and after it.
    late = add_customers(rest, 2, created=last, step=0) + add_customers(rest, 2, created=last + 9)
    second = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, **spec)
    assert second.rows_inserted == 4
    assert second.rows_read == 5  # the cursor's own second again: one old customer, merged
    assert second.rows_unchanged == 1
    asked = [p for _, p, _ in rest.api.requests_to("/v1/customers")]
    assert any(f"created%5Bgte%5D={last}" in p for p in asked)
    rows = warehouse_rows(warehouse_url, "SELECT count(*), count(DISTINCT id) FROM api.customers")
    assert rows == [(9, 9)]
    assert set(late) <= set(ids(warehouse_url, "api.customers"))


def test_hubspot_search_picks_up_only_contacts_modified_since_the_cursor(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    made = [rest.api.hubspot_add("contacts", T0 + dt.timedelta(minutes=i)) for i in range(5)]
    spec = {"object": "contacts", "mode": "incremental_merge", "cursor": "updatedAt"}
    endpoints = {"contacts": HUBSPOT_CONTACTS_SEARCH}
    secrets = {"token": HUBSPOT_TOKEN}
    rest.sync(duckdb_warehouse_url, endpoints, secrets=secrets, **spec)
    # One contact changes in the cursor's own millisecond, one later; the rest stay as they were.
    cursor = T0 + dt.timedelta(minutes=4)
    rest.api.hubspot_update("contacts", made[4], cursor, email="same-ms@example.com")
    rest.api.hubspot_update("contacts", made[0], cursor + dt.timedelta(seconds=1), email="x@y.z")
    second = rest.sync(duckdb_warehouse_url, endpoints, secrets=secrets, **spec)
    assert (second.rows_read, second.rows_updated, second.rows_inserted) == (2, 2, 0)
    _, _, body = rest.api.requests_to("/search")[-1]
    [flt] = body["filterGroups"][0]["filters"]
    assert flt["value"] == str(int(cursor.timestamp() * 1000))
    emails = dict(warehouse_rows(duckdb_warehouse_url, "SELECT id, email FROM api.contacts"))
    assert emails[made[4]] == "same-ms@example.com" and emails[made[0]] == "x@y.z"


# -- operating against the API ------------------------------------------------------------------


def test_429_waits_what_retry_after_says_and_then_loads_everything(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 8)
    rest.api.fail("/v1/customers", 429, times=2, retry_after="7")
    result = rest.sync(duckdb_warehouse_url, {"customers": STRIPE_CUSTOMERS}, object="customers")
    assert result.rows_read == 8
    assert rest.sleeps == [7.0, 7.0]
    assert result.usage.retries == 2


def test_5xx_is_retried_with_bounded_backoff(rest, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 4)
    rest.api.fail("/v1/customers", 503, times=3)
    result = rest.sync(
        duckdb_warehouse_url,
        {"customers": STRIPE_CUSTOMERS},
        object="customers",
        settings={"backoff_seconds": 0.001, "max_wait_seconds": 0.002},
    )
    assert result.rows_read == 4
    assert len(rest.sleeps) == 3 and all(0 < s <= 0.002 for s in rest.sleeps)


def test_a_429_storm_longer_than_the_retries_fails_naming_the_status(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 2)
    rest.api.fail("/v1/customers", 429, times=50, retry_after="1")
    with pytest.raises(RestApiError, match=r"endpoint 'customers'.*HTTP 429: Too many requests"):
        rest.sync(
            duckdb_warehouse_url,
            {"customers": STRIPE_CUSTOMERS},
            object="customers",
            settings={"max_retries": 4},
        )
    assert rest.sleeps == [1.0] * 4
    assert len(rest.api.requests_to("/v1/customers")) == 5


def test_a_request_timing_out_is_retried(rest, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 3)
    rest.api.fail("/v1/customers", 200, times=1, delay=1.0)
    result = rest.sync(
        duckdb_warehouse_url,
        {"customers": STRIPE_CUSTOMERS},
        object="customers",
        settings={"timeout_seconds": 0.3},
    )
    assert result.rows_read == 3 and result.usage.retries == 1


def test_a_retry_after_longer_than_allowed_fails_naming_the_wait(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 2)
    rest.api.fail("/v1/customers", 429, times=1, retry_after="3600")
    with pytest.raises(RestApiError, match=r"HTTP 429.*wait 3600s, more than max_wait_seconds"):
        rest.sync(duckdb_warehouse_url, {"customers": STRIPE_CUSTOMERS}, object="customers")
    assert rest.sleeps == []


def test_a_bad_key_fails_naming_endpoint_status_and_api_message_but_not_the_key(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    bad = "sk_test_THIS_KEY_IS_WRONG_123456"
    with pytest.raises(RestApiError) as failure:
        rest.sync(
            duckdb_warehouse_url,
            {"customers": STRIPE_CUSTOMERS},
            object="customers",
            secrets={"token": bad},
        )
    message = str(failure.value)
    assert "endpoint 'customers'" in message and "GET /v1/customers" in message
    assert "HTTP 401" in message and "Invalid API Key provided: ***" in message
    assert bad not in message and STRIPE_KEY not in message


def test_a_page_failing_mid_stream_commits_nothing_and_moves_no_cursor(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 6)
    spec = {"object": "customers", "mode": "incremental_merge", "cursor": "created"}
    first = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, **spec)
    add_customers(rest, 7, created=EPOCH0 + 100)
    before = warehouse_rows(warehouse_url, "SELECT id, created FROM api.customers ORDER BY id")
    rest.api.fail("starting_after", 500, times=10)  # the second page and every retry of it
    with pytest.raises(RestApiError, match=r"HTTP 500.*gave up after 2 retries"):
        rest.sync(
            warehouse_url, {"customers": STRIPE_CUSTOMERS}, settings={"max_retries": 2}, **spec
        )
    after = warehouse_rows(warehouse_url, "SELECT id, created FROM api.customers ORDER BY id")
    assert after == before
    rest.api.clear_faults()
    third = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, **spec)
    assert third.cursor_before == first.cursor_after
    assert len(ids(warehouse_url, "api.customers")) == 13


def test_a_page_that_is_not_json_fails_naming_endpoint_and_content_type_and_commits_nothing(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 6)
    spec = {"object": "customers", "mode": "incremental_merge", "cursor": "created"}
    rest.api.fail("starting_after", 200, html="<html><body>Gateway maintenance</body></html>")

    with pytest.raises(RestApiError) as failure:
        rest.sync(duckdb_warehouse_url, {"customers": STRIPE_CUSTOMERS}, **spec)

    message = str(failure.value)
    assert "endpoint 'customers'" in message and "(text/html) is not JSON" in message
    assert STRIPE_KEY not in message
    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'api'",
    ) == [(0,)]


def test_the_request_budget_stops_the_run_before_anything_is_committed(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_customers(rest, 12)  # 4 pages of 3, plus the describe request
    with pytest.raises(
        RequestBudgetExhausted, match=r"max_requests = 3.*nothing of it was committed"
    ):
        rest.sync(
            duckdb_warehouse_url,
            {"customers": STRIPE_CUSTOMERS},
            object="customers",
            settings={"max_requests": 3},
        )
    assert len(rest.api.requests_to("/v1/customers")) == 3
    tables = warehouse_rows(
        duckdb_warehouse_url,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'customers'",
    )
    assert tables == [(0,)]


# -- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "secrets"),
    [
        ({"type": "api_key", "key_env": "K", "name": "api_key", "location": "query"}, "key"),
        ({"type": "basic", "username_env": "U", "password_env": "P"}, "basic"),
        ({"type": "bearer", "token_env": "T"}, "bearer"),
    ],
)
def test_each_static_credential_kind_is_accepted(rest, duckdb_warehouse_url, auth, secrets) -> None:  # type: ignore[no-untyped-def]
    rest.api.item_add(T0, name="one")
    given = {
        "key": {"key": rest.api.api_key},
        "basic": {"username": rest.api.basic[0], "password": rest.api.basic[1]},
        "bearer": {"token": HUBSPOT_TOKEN},
    }[secrets]
    endpoint = {"path": "/api/offset/items", "records": "items", "paginator": {"type": "offset"}}
    result = rest.sync(
        duckdb_warehouse_url,
        {"items": endpoint},
        object="items",
        settings={"auth": auth},
        secrets=given,
    )
    assert result.rows_read == 1


def test_oauth_token_is_fetched_once_and_again_after_the_api_revokes_it(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        rest.api.hubspot_add("contacts", T0, email=f"o{i}@example.com")
    token_url = f"{rest.base_url}/oauth/token"
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id_env": "CI",
        "client_secret_env": "CS",
    }
    source = rest.source(
        {"contacts": HUBSPOT_CONTACTS},
        {"client_id": "client-1", "client_secret": "client-secret-abc", "token": None},
        auth=auth,
    )
    try:
        pages = source._records("contacts", None)
        first = next(pages)
        rest.api.revoke_tokens()  # the next page answers 401: one new token, then on
        rest_of = [r for page in pages for r in page]
    finally:
        source.close()
    assert len(first) + len(rest_of) == 6
    assert source.client.usage.token_fetches == 2
    assert len(rest.api.requests_to("/oauth/token")) == 2


def test_a_wrong_client_secret_fails_at_the_token_endpoint_without_showing_it(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": "/oauth/token",
        "client_id_env": "CI",
        "client_secret_env": "CS",
        "client_auth": "body",
    }
    with pytest.raises(SyncError) as failure:
        rest.sync(
            duckdb_warehouse_url,
            {"contacts": HUBSPOT_CONTACTS},
            object="contacts",
            settings={"auth": auth},
            secrets={"client_id": "client-1", "client_secret": "not-the-secret-xyz"},
        )
    message = str(failure.value)
    assert "/oauth/token" in message and "HTTP 401" in message and "Bad client" in message
    assert "not-the-secret-xyz" not in message


# -- records to rows ----------------------------------------------------------------------------


def test_nested_objects_land_as_json_and_declared_types_are_kept(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    rest.api.stripe_add(
        "customers",
        created=EPOCH0,
        metadata={"tier": "gold"},
        address={"city": "Lyon", "country": "FR"},
        balance=-250,
        delinquent=False,
    )
    result = rest.sync(warehouse_url, {"customers": STRIPE_CUSTOMERS}, object="customers")
    types = {c.name: c.type_label for c in result.columns}
    assert types["created"] == "timestamptz" and types["metadata"] == "json"
    assert types["balance"] == "int64" and types["delinquent"] == "boolean"
    [(created, city, balance)] = warehouse_rows(
        warehouse_url,
        "SELECT created, CAST(address AS VARCHAR), balance FROM api.customers",
    )
    assert created == T0
    assert json.loads(city) == {"city": "Lyon", "country": "FR"}
    assert balance == -250


def test_a_child_endpoint_reads_the_lines_of_every_parent(rest, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    invoices = [rest.api.stripe_add("invoices", created=EPOCH0 + i) for i in range(3)]
    lines = {
        inv: [rest.api.stripe_add(f"invoices/{inv}/lines", amount=100 * n) for n in range(4)]
        for inv in invoices
    }
    endpoints = {
        "invoices": {**STRIPE_CUSTOMERS, "path": "/v1/invoices"},
        "invoice_lines": {
            "path": "/v1/invoices/{parent.id}/lines",
            "parent": "invoices",
            "parent_fields": {"invoice_id": "id"},
            "params": {"limit": 3},
            "records": "data",
            "paginator": {"type": "cursor"},
        },
    }
    result = rest.sync(duckdb_warehouse_url, endpoints, object="invoice_lines")
    assert result.rows_read == 12
    rows = warehouse_rows(duckdb_warehouse_url, "SELECT invoice_id, id FROM api.invoice_lines")
    assert sorted(rows) == sorted((inv, line) for inv, ls in lines.items() for line in ls)
