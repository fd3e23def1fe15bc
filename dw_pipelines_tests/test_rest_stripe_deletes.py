"""Stripe deletions read from the `events` endpoint (`customer.deleted`) and applied by
incremental_merge in the same transaction as the rows.

The fake Stripe serves HTTPS on a free port; deleting a customer there removes it from
`/v1/customers` and lists a `customer.deleted` event, as Stripe does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dw_pipelines.sync.sources.rest.client import RestApiError
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import STRIPE_CUSTOMERS

EPOCH0 = int(dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp())
ENDPOINTS: dict[str, Any] = {
    "customers": {
        **STRIPE_CUSTOMERS,
        "deletes": {"endpoint": "customer_deletions", "keys": {"id": "data.object.id"}},
    },
    "customer_deletions": {
        "path": "/v1/events",
        "params": {"type": "customer.deleted", "limit": 3},
        "records": "data",
        "paginator": {"type": "cursor"},
        "incremental": {"param": "created[gte]", "format": "unix"},
    },
}
SPEC = {"object": "customers", "mode": "incremental_merge", "cursor": "created"}


def add_customers(rest, n: int, created: int = EPOCH0) -> list[str]:  # type: ignore[no-untyped-def]
    return [rest.api.stripe_add("customers", created=created + i) for i in range(n)]


def live_ids(warehouse_url: str, where: str = "") -> list[str]:
    return [r[0] for r in warehouse_rows(warehouse_url, f"SELECT id FROM api.customers{where}")]


def test_customers_deleted_in_stripe_are_deleted_by_the_next_run(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 8)
    rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    for gone in made[:4]:  # four events: two pages of the events list
        rest.api.stripe_delete("customers", gone, at=EPOCH0 + 100)
    new = add_customers(rest, 1, created=EPOCH0 + 200)
    second = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert (second.rows_deleted, second.rows_inserted) == (4, 1)
    assert sorted(live_ids(warehouse_url)) == sorted(made[4:] + new)
    [(_, asked, _)] = rest.api.requests_to("/v1/events")[:1]
    assert "type=customer.deleted" in asked and f"created%5Bgte%5D={EPOCH0 + 7}" in asked


def test_soft_deletes_mark_the_deleted_customer_and_keep_its_row(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 3)
    rest.sync(warehouse_url, ENDPOINTS, deletes="soft", **SPEC)
    rest.api.stripe_delete("customers", made[0], at=EPOCH0 + 100)
    second = rest.sync(warehouse_url, ENDPOINTS, deletes="soft", **SPEC)
    assert second.rows_deleted == 1
    assert live_ids(warehouse_url, " WHERE _dw_deleted_at IS NOT NULL") == [made[0]]
    assert len(live_ids(warehouse_url)) == 3


def test_a_failing_events_page_commits_neither_the_rows_nor_the_deletes(
    rest, warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    made = add_customers(rest, 3)
    first = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    rest.api.stripe_delete("customers", made[0], at=EPOCH0 + 100)
    add_customers(rest, 2, created=EPOCH0 + 200)
    rest.api.fail("/v1/events", 500, times=10)
    with pytest.raises(RestApiError, match=r"endpoint 'customer_deletions'.*HTTP 500"):
        rest.sync(warehouse_url, ENDPOINTS, settings={"max_retries": 1}, **SPEC)
    assert sorted(live_ids(warehouse_url)) == sorted(made)
    rest.api.clear_faults()
    third = rest.sync(warehouse_url, ENDPOINTS, **SPEC)
    assert third.cursor_before == first.cursor_after
    assert (third.rows_deleted, third.rows_inserted) == (1, 2)
