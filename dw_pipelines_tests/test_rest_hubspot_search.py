"""HubSpot CRM search read by keyset paging: every page a new search from the last record's
`hs_lastmodifieddate`, so the search's result window (10,000; shrunk to 6 here) is never paged
past and a contact changing during the read shifts no other out of reach.

The fake HubSpot serves HTTPS on a free port and refuses an offset past its window as HubSpot
does; the product's own client talks to it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dw_pipelines.sync.sources.rest.client import RestApiError
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.rest_fixtures import (
    HUBSPOT_CONTACTS_KEYSET,
    HUBSPOT_CONTACTS_SEARCH,
    HUBSPOT_TOKEN,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
INCREMENTAL = {"object": "contacts", "mode": "incremental_merge", "cursor": "updatedAt"}
SECRETS = {"token": HUBSPOT_TOKEN}


def add_contacts(rest, n: int, at=None) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        rest.api.hubspot_add("contacts", at or T0 + dt.timedelta(minutes=i), email=f"k{i}@x.io")
        for i in range(n)
    ]


def read_all(rest, incremental: bool, change: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The contacts' ids as one read gives them, `change` modified now after the first page."""
    source = rest.source({"contacts": HUBSPOT_CONTACTS_KEYSET}, SECRETS)
    try:
        pages = source._records("contacts", None, incremental)
        got = [r["id"] for r in next(pages)]
        rest.api.hubspot_update("contacts", change, dt.datetime.now(UTC), email="new@x.io")
        return got + [r["id"] for page in pages for r in page]
    finally:
        source.close()


def test_a_search_beyond_its_result_window_loads_every_contact_once(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    rest.api.search_window = 6
    made = add_contacts(rest, 15)
    endpoints = {"contacts": HUBSPOT_CONTACTS_KEYSET}
    result = rest.sync(duckdb_warehouse_url, endpoints, secrets=SECRETS, **INCREMENTAL)
    assert result.rows_read == 15
    loaded = warehouse_rows(duckdb_warehouse_url, "SELECT id FROM api.contacts ORDER BY id")
    assert [r[0] for r in loaded] == sorted(made)
    bodies = [body for _, _, body in rest.api.requests_to("/search")]
    assert all(int(b.get("after") or 0) == 0 for b in bodies)


def test_offset_paging_of_the_same_search_is_refused_at_the_window(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    rest.api.search_window = 6
    add_contacts(rest, 15)
    endpoints = {"contacts": HUBSPOT_CONTACTS_SEARCH}
    with pytest.raises(RestApiError, match=r"HTTP 400.*limited to 6 total results"):
        rest.sync(duckdb_warehouse_url, endpoints, secrets=SECRETS, **INCREMENTAL)


def test_contacts_sharing_one_millisecond_over_several_pages_are_each_loaded_once(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    same = add_contacts(rest, 5, at=T0)  # pages of 2: the instant spans three pages
    later = add_contacts(rest, 3, at=T0 + dt.timedelta(seconds=1))
    endpoints = {"contacts": HUBSPOT_CONTACTS_KEYSET}
    result = rest.sync(duckdb_warehouse_url, endpoints, secrets=SECRETS, **INCREMENTAL)
    assert result.rows_read == 8
    loaded = warehouse_rows(duckdb_warehouse_url, "SELECT id FROM api.contacts ORDER BY id")
    assert [r[0] for r in loaded] == sorted(same + later)


def test_a_contact_changed_during_an_incremental_read_skips_none_and_waits_for_the_next_run(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    made = add_contacts(rest, 10)
    # Offset paging would now skip made[2]: made[0] moved to the end, the rest moved up one.
    assert read_all(rest, incremental=True, change=made[0]) == made
    rest.api.advance(2.0)  # the API's clock: the next run starts after the change
    endpoints = {"contacts": HUBSPOT_CONTACTS_KEYSET}
    rest.sync(duckdb_warehouse_url, endpoints, secrets=SECRETS, **INCREMENTAL)
    emails = dict(warehouse_rows(duckdb_warehouse_url, "SELECT id, email FROM api.contacts"))
    assert emails[made[0]] == "new@x.io" and len(emails) == 10


def test_a_contact_changed_during_a_full_read_is_read_once(rest) -> None:  # type: ignore[no-untyped-def]
    made = add_contacts(rest, 10)
    assert read_all(rest, incremental=False, change=made[0]) == made
