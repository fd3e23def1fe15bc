"""REST sources against a fake API that issues OAuth tokens by refresh token and announces its
rate limits in headers.

The fake serves HTTPS on a free port and the product's own client (requests + tenacity) talks
to it. Waits are recorded, never slept: the recorded sleep also moves the fake's rate-limit
clock, so a client that waits what the headers say is one the fake never answers 429.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dw_pipelines.sync.errors import SyncError
from dw_pipelines_tests.rest_fixtures import HUBSPOT_CONTACTS, HUBSPOT_TOKEN

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
REFRESH_AUTH: dict[str, Any] = {
    "type": "oauth2_refresh_token",
    "token_url": "/oauth/token",
    "client_id_env": "HUBSPOT_CLIENT_ID",
    "client_secret_env": "HUBSPOT_CLIENT_SECRET",
    "refresh_token_env": "HUBSPOT_REFRESH_TOKEN",
}
OFFSET_3 = {"type": "offset", "limit": 3}
REFRESH_SECRETS = {
    "client_id": "client-1",
    "client_secret": "client-secret-abc",
    "refresh_token": "refresh-0000-initial",
    "token": None,
}


def add_contacts(rest, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        rest.api.hubspot_add("contacts", T0, email=f"r{i}@example.com")


# -- OAuth 2.0 refresh token --------------------------------------------------------------------


def test_an_expiring_access_token_is_refreshed_with_the_refresh_token_the_server_rotated(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_contacts(rest, 6)
    # Tokens live 30 s, within the client's safety margin: every request needs a fresh one,
    # and each refresh retires the refresh token it used.
    rest.api.token_ttl = 30.0
    rest.api.rotate_refresh_tokens = True
    result = rest.sync(
        duckdb_warehouse_url,
        {"contacts": HUBSPOT_CONTACTS},
        object="contacts",
        settings={"auth": REFRESH_AUTH},
        secrets=REFRESH_SECRETS,
    )
    assert result.rows_read == 6
    pages = len(rest.api.requests_to("/crm/v3/objects/contacts"))
    assert result.usage.token_fetches == pages == len(rest.api.requests_to("/oauth/token"))
    assert "refresh-0000-initial" not in rest.api.refresh_tokens


def test_a_401_makes_the_refresh_token_flow_fetch_a_new_access_token(rest) -> None:  # type: ignore[no-untyped-def]
    add_contacts(rest, 6)
    source = rest.source({"contacts": HUBSPOT_CONTACTS}, REFRESH_SECRETS, auth=REFRESH_AUTH)
    try:
        pages = source._records("contacts", None)
        first = next(pages)
        rest.api.revoke_tokens()  # the next page answers 401: one refresh, then on
        rest_of = [r for page in pages for r in page]
    finally:
        source.close()
    assert len(first) + len(rest_of) == 6
    assert source.client.usage.token_fetches == 2


def test_an_unknown_refresh_token_fails_naming_the_reason_but_not_the_token(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    stale = "refresh-STALE-do-not-print-42"
    with pytest.raises(SyncError) as failure:
        rest.sync(
            duckdb_warehouse_url,
            {"contacts": HUBSPOT_CONTACTS},
            object="contacts",
            settings={"auth": REFRESH_AUTH},
            secrets=REFRESH_SECRETS | {"refresh_token": stale},
        )
    message = str(failure.value)
    assert "/oauth/token" in message and "HTTP 400" in message
    assert "missing or unknown refresh token" in message
    assert stale not in message and "client-secret-abc" not in message


# -- rate-limit headers -------------------------------------------------------------------------


def test_hubspot_rate_limit_headers_pause_the_client_before_the_api_answers_429(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_contacts(rest, 7)  # the describe page and 4 pages of 2: 5 requests
    rest.api.limit("/crm/", limit=3, interval=10.0)
    result = rest.sync(
        duckdb_warehouse_url,
        {"contacts": HUBSPOT_CONTACTS},
        object="contacts",
        secrets={"token": HUBSPOT_TOKEN},
    )
    assert result.rows_read == 7
    assert rest.api.rate_limited == 0
    assert rest.sleeps == [10.0]
    assert result.usage.throttle_waits == 1 and result.usage.retries == 0


def test_ietf_ratelimit_headers_pause_the_client_until_the_window_resets(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    for i in range(10):
        rest.api.item_add(T0, name=f"item {i}")
    rest.api.limit("/api/", limit=2, interval=5.0, style="ietf")
    endpoint = {"path": "/api/offset/items", "records": "items", "paginator": OFFSET_3}
    result = rest.sync(
        duckdb_warehouse_url,
        {"items": endpoint},
        object="items",
        settings={"auth": {"type": "api_key", "key_env": "K", "name": "X-Api-Key"}},
        secrets={"key": rest.api.api_key},
    )
    assert result.rows_read == 10  # the describe page and 4 pages of 3: 5 requests
    assert rest.api.rate_limited == 0
    assert rest.sleeps == [5.0, 5.0]


def test_a_429_without_retry_after_waits_the_window_its_rate_limit_headers_announce(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_contacts(rest, 3)
    # Another client of the account used the whole window: the first request is refused.
    rest.api.limit("/crm/", limit=10, interval=10.0, used=10)
    result = rest.sync(
        duckdb_warehouse_url,
        {"contacts": HUBSPOT_CONTACTS},
        object="contacts",
        secrets={"token": HUBSPOT_TOKEN},
    )
    assert result.rows_read == 3
    assert rest.api.rate_limited == 1
    assert rest.sleeps == [10.0] and result.usage.retries == 1


def test_a_rate_limit_window_longer_than_allowed_fails_naming_the_wait(
    rest, duckdb_warehouse_url
) -> None:  # type: ignore[no-untyped-def]
    add_contacts(rest, 7)
    rest.api.limit("/crm/", limit=1, interval=86_400.0)
    with pytest.raises(SyncError, match=r"window resets in 86400s, more than max_wait_seconds"):
        rest.sync(
            duckdb_warehouse_url,
            {"contacts": HUBSPOT_CONTACTS},
            object="contacts",
            secrets={"token": HUBSPOT_TOKEN},
        )
    assert rest.sleeps == [] and rest.api.rate_limited == 0
