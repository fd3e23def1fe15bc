"""The packaged Stripe and HubSpot declarations (`preset:`) read the fakes as shipped: every
Stripe object incremental on `created` with its updates from events; HubSpot objects through
CRM search with archived records as deletes, and their CRM v4 associations through the batch
read, many records a request.

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


# The association endpoint as it was before the batch read: one listing per contact.
ONE_BY_ONE: dict[str, Any] = {
    "path": "/crm/v4/objects/contacts/{parent.id}/associations/companies",
    "parent": "contacts",
    "parent_fields": {"from_id": "id"},
    "params": {"limit": 2},
    "records": "results",
    "paginator": {"type": "token", "from_body": "paging.next.after", "param": "after"},
    "flatten": {"to_id": "toObjectId", "association_types": "associationTypes"},
    "columns": {"from_id": "string", "to_id": "string", "association_types": "json"},
    "infer_columns": False,
}
PAIRS = {"mode": "full_refresh", "primary_key": ["from_id", "to_id"]}


def associated(warehouse_url: str, table: str) -> dict[tuple[str, str], list[int]]:
    rows = warehouse_rows(
        warehouse_url, f"SELECT from_id, to_id, association_types FROM api.{table}"
    )
    return {
        (f, t): sorted(x["typeId"] for x in (json.loads(a) if isinstance(a, str) else a))
        for f, t, a in rows
    }


def batch_inputs(rest) -> list[list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    return [body["inputs"] for _, _, body in rest.api.requests_to("/batch/read")]


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
    rest.api.association_page = 2  # the first contact's result: 2 pages
    hubspot(rest, duckdb_warehouse_url, "contact_companies", **PAIRS)
    assert associated(duckdb_warehouse_url, "contact_companies") == {
        (contacts[0], companies[0]): [1, 279],
        (contacts[0], companies[1]): [279],
        (contacts[0], companies[2]): [9],
        (contacts[2], companies[2]): [1],
    }
    first, second = batch_inputs(rest)
    assert first == [{"id": c} for c in contacts]
    assert [i["id"] for i in second] == [contacts[0]] and second[0]["after"]  # its second page


def test_the_batch_read_lands_the_same_rows_as_one_request_per_contact_in_fewer_requests(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    contacts = [rest.api.hubspot_add("contacts", T0 + dt.timedelta(minutes=i)) for i in range(8)]
    companies = [rest.api.hubspot_add("companies", T0) for _ in range(3)]
    for n, contact in enumerate(contacts):
        for company in companies[: n % 4]:  # 0 to 3 companies, none for some contacts
            rest.api.hubspot_associate("contacts", contact, "companies", company, 279)
    rest.api.association_page = 2  # contacts with 3 companies: a second page, either way
    endpoints = {"contacts_one_by_one": ONE_BY_ONE}
    before = hubspot(rest, duckdb_warehouse_url, "contacts_one_by_one", endpoints, **PAIRS)
    listings = len(rest.api.requests_to("/crm/v4/"))
    after = hubspot(rest, duckdb_warehouse_url, "contact_companies", endpoints, **PAIRS)
    assert associated(duckdb_warehouse_url, "contact_companies") == associated(
        duckdb_warehouse_url, "contacts_one_by_one"
    )
    assert after.rows_inserted == before.rows_inserted == 2 * (0 + 1 + 2 + 3)
    assert listings == 8 + 2  # a request per contact, and the second pages of 2 of them
    assert len(batch_inputs(rest)) == 1 + 1  # all 8 contacts, then those 2 second pages
    assert after.usage.requests == before.usage.requests - listings + 2


def test_association_requests_are_one_per_batch_of_contacts_plus_each_round_of_pages(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    contacts = [rest.api.hubspot_add("contacts", T0 + dt.timedelta(minutes=i)) for i in range(5)]
    companies = [rest.api.hubspot_add("companies", T0) for _ in range(5)]
    for company in companies:
        rest.api.hubspot_associate("contacts", contacts[0], "companies", company, 279)
    for company in companies[:3]:
        rest.api.hubspot_associate("contacts", contacts[3], "companies", company, 279)
    rest.api.association_page = 2  # 5 companies: 3 pages; 3 companies: 2 pages
    batch = preset_settings("hubspot")["endpoints"]["contact_companies"]["parent_batch"]
    endpoints = {"contact_companies": {"parent_batch": {**batch, "size": 2}}}
    result = hubspot(rest, duckdb_warehouse_url, "contact_companies", endpoints, **PAIRS)
    assert result.rows_inserted == 5 + 3
    asked = [[(i["id"], "after" in i) for i in inputs] for inputs in batch_inputs(rest)]
    assert asked == [
        [(contacts[0], False), (contacts[1], False)],
        [(contacts[0], True)],
        [(contacts[0], True)],
        [(contacts[2], False), (contacts[3], False)],
        [(contacts[3], True)],
        [(contacts[4], False)],
    ]  # ceil(5 / 2) = 3 batches, and 3 more pages; contacts without any: none (a 207's errors)
    searches = len(rest.api.requests_to("/contacts/search"))
    assert result.usage.requests == searches + 6


def test_the_hubspot_preset_asks_for_a_thousand_contacts_a_request(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    contacts = [rest.api.hubspot_add("contacts", T0) for _ in range(1001)]
    company = rest.api.hubspot_add("companies", T0)
    for contact in contacts[::100]:
        rest.api.hubspot_associate("contacts", contact, "companies", company, 279)
    result = hubspot(rest, duckdb_warehouse_url, "contact_companies", **PAIRS)
    assert result.rows_inserted == 11
    assert [len(inputs) for inputs in batch_inputs(rest)] == [1000, 1]


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


def one_association_synced(rest, warehouse_url: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A contact associated with a company, and the association synced: (contact, company)."""
    contact, company = rest.api.hubspot_add("contacts", T0), rest.api.hubspot_add("companies", T0)
    rest.api.hubspot_associate("contacts", contact, "companies", company, 279)
    hubspot(rest, warehouse_url, "contact_companies", **PAIRS)
    return contact, company


def test_a_failing_batch_read_fails_the_run_and_keeps_the_last_associations(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    contact, company = one_association_synced(rest, duckdb_warehouse_url)
    rest.api.hubspot_associate(
        "contacts", contact, "companies", rest.api.hubspot_add("companies", T0), 279
    )
    rest.api.fail("/batch/read", 500, times=10)
    with pytest.raises(Exception, match=r"endpoint 'contact_companies'.*batch/read.*HTTP 500"):
        hubspot(rest, duckdb_warehouse_url, "contact_companies", **PAIRS)
    assert associated(duckdb_warehouse_url, "contact_companies") == {(contact, company): [279]}


def test_a_batch_read_error_other_than_no_associations_fails_the_run_and_keeps_the_last_ones(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    # A 207 lists the contacts it could not answer beside those it did: reading only the
    # answered ones would drop the others' associations without a word.
    contact, company = one_association_synced(rest, duckdb_warehouse_url)
    other = rest.api.hubspot_add("contacts", T0)
    rest.api.hubspot_associate("contacts", other, "companies", company, 279)
    rest.api.association_errors[other] = {
        "status": "error",
        "category": "INTERNAL_ERROR",
        "message": f"Could not read associations of contact {other}.",
    }
    with pytest.raises(Exception, match=r"endpoint 'contact_companies'.*INTERNAL_ERROR"):
        hubspot(rest, duckdb_warehouse_url, "contact_companies", **PAIRS)
    assert associated(duckdb_warehouse_url, "contact_companies") == {(contact, company): [279]}
