"""The packaged Stripe and HubSpot declarations (`preset:`) read the fakes as shipped: every
Stripe object incremental on `created` with its updates from events; HubSpot objects through
CRM search with archived records as deletes, and their CRM v4 associations.

What a declaration asks is checked on DuckDB only; archived deletes, which rely on the load
unit's transaction, on every warehouse."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from dw_pipelines.sync.sources.rest.config import preset_settings
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import HUBSPOT_TOKEN

EPOCH0 = int(dt.datetime(2026, 3, 3, 8, 0, 0, tzinfo=dt.UTC).timestamp())
T0 = dt.datetime(2026, 3, 3, 8, 0, 0, tzinfo=dt.UTC)
MERGE = {"mode": "incremental_merge", "primary_key": ["id"]}
STRIPE_OBJECTS = [
    "customers",
    "charges",
    "payment_intents",
    "invoices",
    "subscriptions",
    "refunds",
    "balance_transactions",
]
# Each object's update as Stripe lists it (no `payment_intent.updated`; subscriptions' events
# are `customer.subscription.*`).
STRIPE_UPDATE_EVENTS = {
    "customers": "customer.updated",
    "charges": "charge.refunded",
    "payment_intents": "payment_intent.succeeded",
    "invoices": "invoice.paid",
    "subscriptions": "customer.subscription.updated",
    "refunds": "refund.updated",
}


def stripe(rest, warehouse_url: str, obj: str, **spec: Any):  # type: ignore[no-untyped-def]
    settings = {"preset": "stripe", "base_url": rest.base_url}
    return rest.sync(warehouse_url, {}, settings=settings, object=obj, **(MERGE | spec))


def hubspot(
    rest, warehouse_url: str, obj: str, endpoints: dict[str, Any] | None = None, **spec: Any
):  # type: ignore[no-untyped-def]
    settings = {"preset": "hubspot", "base_url": rest.base_url}
    return rest.sync(
        warehouse_url,
        endpoints or {},
        secrets={"token": HUBSPOT_TOKEN},
        settings=settings,
        object=obj,
        **(MERGE | spec),
    )


def ids(warehouse_url: str, table: str) -> list[str]:
    return sorted(r[0] for r in warehouse_rows(warehouse_url, f"SELECT id FROM api.{table}"))


def test_the_stripe_preset_reads_each_object_from_its_created_cursor(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    for obj in STRIPE_OBJECTS:
        made = [rest.api.stripe_add(obj, created=EPOCH0 + i, amount=100 * i) for i in range(3)]
        first = stripe(rest, duckdb_warehouse_url, obj, cursor="created")
        newer = rest.api.stripe_add(obj, created=EPOCH0 + 50, amount=7)
        second = stripe(rest, duckdb_warehouse_url, obj, cursor="created")
        assert (first.rows_inserted, second.rows_inserted) == (3, 1), obj
        assert ids(duckdb_warehouse_url, obj) == sorted([*made, newer])
        [(_, asked, _)] = rest.api.requests_to(f"/v1/{obj}?")[-1:]
        assert f"created%5Bgte%5D={EPOCH0 + 2}" in asked and "limit=100" in asked


def test_the_stripe_preset_catches_old_objects_updates_through_their_events(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    for obj, event in STRIPE_UPDATE_EVENTS.items():
        old = rest.api.stripe_add(obj, created=EPOCH0, status="open")
        rest.api.stripe_add(obj, created=EPOCH0 + 1, status="open")
        stripe(rest, duckdb_warehouse_url, obj, cursor="created")
        rest.api.stripe_update(obj, old, at=EPOCH0 + 100, event=event, status="paid")
        second = stripe(rest, duckdb_warehouse_url, obj, cursor="created")
        assert second.rows_updated == 1, obj
        rows = dict(warehouse_rows(duckdb_warehouse_url, f"SELECT id, status FROM api.{obj}"))  # type: ignore[arg-type]
        assert rows[old] == "paid", obj


def test_the_stripe_preset_reads_every_invoices_lines(rest, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    invoices = [rest.api.stripe_add("invoices", created=EPOCH0 + i) for i in range(2)]
    lines = {
        rest.api.stripe_add(f"invoices/{inv}/lines", created=EPOCH0, amount=n): inv
        for inv in invoices
        for n in range(2)
    }
    stripe(
        rest,
        duckdb_warehouse_url,
        "invoice_lines",
        mode="full_refresh",
        primary_key=["invoice_id", "id"],
    )
    held = warehouse_rows(duckdb_warehouse_url, "SELECT id, invoice_id FROM api.invoice_lines")
    assert dict(held) == lines  # type: ignore[arg-type]


def test_a_preset_endpoint_takes_the_settings_given_over_the_packaged_ones(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        rest.api.stripe_add("customers", created=EPOCH0 + i)
    endpoints = {"customers": {"params": {"limit": 2}}}
    settings = {"preset": "stripe", "base_url": rest.base_url}
    rest.sync(
        duckdb_warehouse_url,
        endpoints,
        settings=settings,
        object="customers",
        cursor="created",
        **MERGE,
    )
    asked = [path for _, path, _ in rest.api.requests_to("/v1/customers")]
    assert len(asked) == 4 and all("limit=2" in path for path in asked)  # describe + 3 pages
    # The rest of the packaged endpoint stays: its paginator, changes and deletes.
    customers = rest.settings(endpoints, preset="stripe").endpoints["customers"]
    packaged = preset_settings("stripe")["endpoints"]["customers"]
    assert customers.paginator.type == "cursor" and customers.deletes is not None
    assert customers.changes.endpoint == packaged["changes"]["endpoint"] == "customer_updates"


def test_a_contact_archived_in_hubspot_is_deleted_by_the_next_run(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = [rest.api.hubspot_add("contacts", T0 + dt.timedelta(minutes=i)) for i in range(4)]
    hubspot(rest, warehouse_url, "contacts", cursor="updatedAt")
    rest.api.hubspot_archive("contacts", made[1], at=T0 + dt.timedelta(hours=1))
    changed = rest.api.hubspot_add("contacts", T0 + dt.timedelta(hours=2), email="n@x.example")
    second = hubspot(rest, warehouse_url, "contacts", cursor="updatedAt")
    assert (second.rows_deleted, second.rows_inserted) == (1, 1)
    assert ids(warehouse_url, "contacts") == sorted([made[0], made[2], made[3], changed])
    [(_, asked, _)] = rest.api.requests_to("/crm/v3/objects/contacts?")
    assert "archived=true" in asked


def test_a_failing_archived_page_commits_neither_rows_nor_deletes(rest, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    made = [rest.api.hubspot_add("deals", T0 + dt.timedelta(minutes=i)) for i in range(2)]
    first = hubspot(rest, warehouse_url, "deals", cursor="updatedAt")
    rest.api.hubspot_archive("deals", made[0], at=T0 + dt.timedelta(hours=1))
    rest.api.hubspot_add("deals", T0 + dt.timedelta(hours=2))
    rest.api.fail("archived=true", 500, times=10)
    with pytest.raises(Exception, match=r"endpoint 'deals_archived'.*HTTP 500"):
        hubspot(rest, warehouse_url, "deals", cursor="updatedAt")
    assert ids(warehouse_url, "deals") == sorted(made)
    rest.api.clear_faults()
    third = hubspot(rest, warehouse_url, "deals", cursor="updatedAt")
    assert third.cursor_before == first.cursor_after
    assert (third.rows_deleted, third.rows_inserted) == (1, 1)


def test_contact_company_associations_land_one_row_per_pair_with_their_types(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    contacts = [rest.api.hubspot_add("contacts", T0 + dt.timedelta(minutes=i)) for i in range(3)]
    companies = [rest.api.hubspot_add("companies", T0) for _ in range(3)]
    rest.api.hubspot_associate("contacts", contacts[0], "companies", companies[0], 1, None)
    rest.api.hubspot_associate("contacts", contacts[0], "companies", companies[0], 279, None)
    rest.api.hubspot_associate("contacts", contacts[0], "companies", companies[1], 279, None)
    rest.api.hubspot_associate("contacts", contacts[0], "companies", companies[2], 9, "Billing")
    rest.api.hubspot_associate("contacts", contacts[2], "companies", companies[2], 1, None)
    endpoints = {"contact_companies": {"params": {"limit": 2}}}  # the first contact's: 2 pages
    hubspot(
        rest,
        duckdb_warehouse_url,
        "contact_companies",
        endpoints,
        mode="full_refresh",
        primary_key=["from_id", "to_id"],
    )
    rows = warehouse_rows(
        duckdb_warehouse_url, "SELECT from_id, to_id, association_types FROM api.contact_companies"
    )
    held = {
        (f, t): sorted(x["typeId"] for x in (json.loads(a) if isinstance(a, str) else a))
        for f, t, a in rows
    }
    assert held == {
        (contacts[0], companies[0]): [1, 279],
        (contacts[0], companies[1]): [279],
        (contacts[0], companies[2]): [9],
        (contacts[2], companies[2]): [1],
    }
    first_contacts = rest.api.requests_to(f"/crm/v4/objects/contacts/{contacts[0]}/")
    assert any("after=2" in path for _, path, _ in first_contacts)  # its second page


def test_deal_associations_read_both_companies_and_contacts(rest, duckdb_warehouse_url) -> None:  # type: ignore[no-untyped-def]
    deal = rest.api.hubspot_add("deals", T0)
    company, contact = rest.api.hubspot_add("companies", T0), rest.api.hubspot_add("contacts", T0)
    rest.api.hubspot_associate("deals", deal, "companies", company, 341)
    rest.api.hubspot_associate("deals", deal, "contacts", contact, 3)
    spec = {"mode": "full_refresh", "primary_key": ["from_id", "to_id"]}
    hubspot(rest, duckdb_warehouse_url, "deal_companies", **spec)
    hubspot(rest, duckdb_warehouse_url, "deal_contacts", **spec)
    for table, to_id in (("deal_companies", company), ("deal_contacts", contact)):
        assert warehouse_rows(duckdb_warehouse_url, f"SELECT from_id, to_id FROM api.{table}") == [
            (deal, to_id)
        ]
