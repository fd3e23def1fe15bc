"""Stripe updates read from the `events` endpoint (`customer.updated`, whose `data.object` is
the customer whole) and merged by incremental_merge in the same transaction as the rows.

A stream incremental on `created` never lists an old customer again; updating one in the fake
changes it in `/v1/customers` and lists a `customer.updated` event, as Stripe does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dw_pipelines.sync.sources.rest.client import RestApiError
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import STRIPE_CUSTOMERS

EPOCH0 = int(dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC).timestamp())
EVENTS: dict[str, Any] = {
    "path": "/v1/events",
    "records": "data",
    "paginator": {"type": "cursor"},
    "incremental": {"param": "created[gte]", "format": "unix"},
}
ENDPOINTS: dict[str, Any] = {
    "customers": {
        **STRIPE_CUSTOMERS,
        "columns": {**STRIPE_CUSTOMERS["columns"], "email": "string"},
        "changes": {"endpoint": "customer_updates"},
        "deletes": {"endpoint": "customer_deletions", "keys": {"id": "data.object.id"}},
    },
    "customer_updates": {**EVENTS, "params": {"types[]": ["customer.updated"], "limit": 2}},
    "customer_deletions": {**EVENTS, "params": {"types[]": ["customer.deleted"], "limit": 2}},
}
SPEC = {"object": "customers", "mode": "incremental_merge", "cursor": "created"}


def add_customers(rest, n: int, created: int = EPOCH0) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        rest.api.stripe_add("customers", created=created + i, email=f"c{i}@old.example")
        for i in range(n)
    ]


def emails(warehouse_url: str) -> dict[str, str]:
    return dict(warehouse_rows(warehouse_url, "SELECT id, email FROM api.customers"))  # type: ignore[arg-type]


def test_an_updated_old_customer_is_updated_by_the_next_run(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 5)
    rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    rest.api.stripe_update("customers", made[0], at=EPOCH0 + 100, email="c0@new.example")
    new = add_customers(rest, 1, created=EPOCH0 + 200)
    second = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert (second.rows_updated, second.rows_inserted) == (1, 1)
    assert emails(warehouse_url)[made[0]] == "c0@new.example"
    assert set(emails(warehouse_url)) == {*made, *new}
    [(_, asked, _)] = rest.api.requests_to("types%5B%5D=customer.updated")[:1]
    assert f"created%5Bgte%5D={EPOCH0 + 4}" in asked


def test_the_latest_of_several_updates_of_one_customer_wins(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 2)
    rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    # Three events over two pages of the events list; the last two in the same second.
    for at, email in (
        (100, "first@x.example"),
        (150, "second@x.example"),
        (150, "third@x.example"),
    ):
        rest.api.stripe_update("customers", made[0], at=EPOCH0 + at, email=email)
    second = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert second.rows_updated == 1
    assert emails(warehouse_url)[made[0]] == "third@x.example"


def test_a_customer_updated_then_deleted_is_deleted(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 3)
    rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    rest.api.stripe_update("customers", made[1], at=EPOCH0 + 100, email="gone@x.example")
    rest.api.stripe_delete("customers", made[1], at=EPOCH0 + 110)
    second = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert second.rows_deleted == 1
    assert sorted(emails(warehouse_url)) == sorted([made[0], made[2]])


def test_a_customer_updated_after_the_list_read_it_comes_as_its_listed_state(
    rest, warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    # A customer both created since the cursor and updated is read once, as the list has it.
    made = add_customers(rest, 2)
    rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    late = add_customers(rest, 1, created=EPOCH0 + 50)[0]
    rest.api.stripe_update("customers", late, at=EPOCH0 + 60, email="late@x.example")
    second = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert (second.rows_inserted, second.rows_updated) == (1, 0)
    assert emails(warehouse_url) == {
        made[0]: "c0@old.example",
        made[1]: "c1@old.example",
        late: "late@x.example",
    }


def test_a_failing_events_page_commits_neither_rows_nor_updates(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 3)
    first = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    for i, at in enumerate((100, 101, 102)):  # two pages: the second one fails
        rest.api.stripe_update("customers", made[i], at=EPOCH0 + at, email=f"c{i}@new.example")
    add_customers(rest, 1, created=EPOCH0 + 200)
    rest.api.fail("starting_after=evt_", 500, times=10)
    with pytest.raises(RestApiError, match=r"endpoint 'customer_updates'.*HTTP 500"):
        rest.sync(warehouse_url, ENDPOINTS, settings={"max_retries": 1}, **SPEC)
    assert set(emails(warehouse_url).values()) == {f"c{i}@old.example" for i in range(3)}
    assert len(rest.api.requests_to("types%5B%5D=customer.updated")) >= 2
    rest.api.clear_faults()
    third = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert third.cursor_before == first.cursor_after
    assert (third.rows_updated, third.rows_inserted) == (3, 1)
    assert set(emails(warehouse_url).values()) >= {f"c{i}@new.example" for i in range(3)}
