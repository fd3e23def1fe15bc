"""What a Salesforce sync does when the org says no: sessions, 5xx, locks, timeouts, removed
fields, the API quota, and every way of logging in. A failure always advances nothing."""

from __future__ import annotations

import pytest

from dw_pipelines.sync.errors import SchemaDriftError, SourceUnreachable, SyncError
from dw_pipelines.sync.sources.salesforce import QuotaExhausted, SalesforceQueryError
from dw_pipelines_tests.conftest import warehouse_rows

SPEC = {"object": "Account", "mode": "incremental_merge", "cursor": "SystemModstamp"}
EXPIRED = ("INVALID_SESSION_ID", "Session expired or invalid")


def seed(org, n: int = 5) -> list[str]:  # type: ignore[no-untyped-def]
    return [org.insert("Account", Name=f"Account {i}") for i in range(n)]


def loaded(warehouse_url: str) -> int:
    return warehouse_rows(warehouse_url, "SELECT count(*) FROM salesforce.account")[0][0]


def synced_once_then_changed(salesforce, warehouse_url) -> None:  # type: ignore[no-untyped-def]
    ids = seed(salesforce.org)
    salesforce.sync(warehouse_url, **SPEC)
    salesforce.org.update("Account", ids[0], Name="Changed")
    salesforce.org.insert("Account", Name="New")


def assert_nothing_advanced(warehouse_url: str) -> None:
    assert loaded(warehouse_url) == 5
    assert warehouse_rows(warehouse_url, "SELECT count(*) FROM _dw.sync_log") == [(1,)]


# -- sessions -------------------------------------------------------------------------------------


def test_an_expired_session_logs_in_again_once_and_the_sync_completes(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.org.page_size = 2
    salesforce.org.fail("/query/01g", 401, *EXPIRED)  # expires between two queryMore pages

    result = salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert result.rows_read == 5
    assert result.api.logins == 2
    assert salesforce.org.logins == 2


def test_a_session_refused_again_after_logging_in_anew_fails_clearly(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    salesforce.org.fail("/query", 401, *EXPIRED, times=2)

    with pytest.raises(SourceUnreachable, match="session refused again after logging in anew"):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert salesforce.org.logins == 3  # the first sync's, then this sync's two: never a third
    assert_nothing_advanced(duckdb_warehouse_url)


def test_an_expired_bulk_session_logs_in_again_and_the_job_completes(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.org.fail("/results", 401, *EXPIRED)

    result = salesforce.sync(duckdb_warehouse_url, settings={"bulk_threshold": 1}, **SPEC)

    assert (result.rows_read, result.api.bulk_jobs, result.api.logins) == (5, 1, 2)


def test_an_expired_session_id_without_credentials_fails_naming_the_cause(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.org.sessions.add("00D5g000004ABCD!AQgiven")
    auth = {
        "username": None,
        "password": None,
        "security_token": None,
        "session_id": "00D5g000004ABCD!AQgiven",
        "instance_url": salesforce.server.base_url,
    }
    assert salesforce.sync(duckdb_warehouse_url, settings={"auth": auth}, **SPEC).rows_read == 5
    salesforce.org.expire_sessions()

    with pytest.raises(SourceUnreachable, match="no credentials are configured") as failure:
        salesforce.sync(duckdb_warehouse_url, settings={"auth": auth}, **SPEC)
    assert "AQgiven" not in str(failure.value)


# -- transient errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "SERVER_UNAVAILABLE"), (500, "UNKNOWN_EXCEPTION"), (400, "UNABLE_TO_LOCK_ROW")],
)
def test_transient_errors_are_retried_with_backoff(
    salesforce, duckdb_warehouse_url, status, code
) -> None:
    seed(salesforce.org)
    salesforce.org.fail("/query", status, code, "try again later", times=2)

    result = salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert result.rows_read == 5
    assert result.api.retries == 2


def test_a_request_that_times_out_is_retried(salesforce, duckdb_warehouse_url) -> None:
    seed(salesforce.org)
    salesforce.org.fail("/query", 0, "", "")  # the server never answers this one
    # The hung request outlasts any timeout (it waits for the server to stop); the timeout is
    # generous, so an answered request is never mistaken for a hung one on a busy machine.
    salesforce.server.hang_seconds = None

    result = salesforce.sync(
        duckdb_warehouse_url, settings={"request_timeout_seconds": 3.0}, **SPEC
    )

    assert result.rows_read == 5
    assert result.api.retries == 1


def test_an_error_that_outlasts_the_retries_fails_and_advances_nothing(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    salesforce.org.fail("/query", 503, "SERVER_UNAVAILABLE", "down for maintenance", times=99)

    with pytest.raises(SyncError, match=r"HTTP 503 after 3 retries.*down for maintenance"):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert_nothing_advanced(duckdb_warehouse_url)


# -- removed fields -------------------------------------------------------------------------------


def test_a_field_removed_from_the_org_fails_naming_object_and_field(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    salesforce.org.remove_field("Account", "Website")

    with pytest.raises(SchemaDriftError, match=r"'Website' was dropped.*'Account'"):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert_nothing_advanced(duckdb_warehouse_url)


def test_invalid_field_from_a_query_names_object_and_field(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    message = (
        "\nSELECT Id, Website FROM Account\n ^\nERROR at Row:1:Column:12\nNo such column"
        " 'Website' on entity 'Account'. If you are attempting to use a custom field, be sure"
        " to append the '__c' after the custom field name."
    )
    # Removed between describe() and the query: Salesforce itself says which field.
    salesforce.org.fail("Website", 400, "INVALID_FIELD", message, times=99)

    with pytest.raises(SalesforceQueryError, match=r"field 'Website' of object 'Account'"):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert_nothing_advanced(duckdb_warehouse_url)


def test_under_schema_policy_evolve_a_removed_field_is_kept_as_null_and_the_sync_continues(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    salesforce.org.remove_field("Account", "Website")

    result = salesforce.sync(duckdb_warehouse_url, schema_policy="evolve", **SPEC)

    assert result.rows_read == 3
    assert loaded(duckdb_warehouse_url) == 6


def test_under_schema_policy_evolve_a_field_refused_by_the_query_is_read_as_null(
    salesforce, duckdb_warehouse_url
) -> None:
    salesforce.org.insert("Account", Name="Acme", Website="https://acme.example")
    message = "No such column 'Website' on entity 'Account'."
    salesforce.org.fail("Website", 400, "INVALID_FIELD", message)  # the query naming it

    result = salesforce.sync(
        duckdb_warehouse_url, schema_policy="evolve", object="Account", mode="full_refresh"
    )

    assert result.rows_read == 1
    assert warehouse_rows(
        duckdb_warehouse_url, 'SELECT "Name", "Website" FROM salesforce.account'
    ) == [("Acme", None)]


# -- quota ----------------------------------------------------------------------------------------


def test_a_sync_stops_before_the_quota_share_and_advances_nothing(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    org = salesforce.org
    org.page_size = 1
    org.api_used = int(org.daily_api_max * 0.5) - 3  # room for a few calls, not for every page

    with pytest.raises(QuotaExhausted, match=r"used 7500 of its 15000 daily API requests.*50%"):
        salesforce.sync(duckdb_warehouse_url, settings={"quota_share": 0.5}, **SPEC)

    assert_nothing_advanced(duckdb_warehouse_url)
    assert org.api_used == 7500  # it stopped at the share, not one call later


def test_a_sync_with_the_quota_already_spent_makes_one_call_and_stops(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.org.api_used = 14000

    with pytest.raises(QuotaExhausted):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert salesforce.org.api_calls() == 1  # /limits


def test_the_org_refusing_requests_over_its_limit_fails_as_quota_exhausted(
    salesforce, duckdb_warehouse_url
) -> None:
    synced_once_then_changed(salesforce, duckdb_warehouse_url)
    salesforce.org.fail(
        "/query", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times=99
    )

    with pytest.raises(QuotaExhausted, match="request limit is exceeded"):
        salesforce.sync(duckdb_warehouse_url, **SPEC)

    assert_nothing_advanced(duckdb_warehouse_url)


def test_api_usage_is_reported_with_the_result(salesforce, duckdb_warehouse_url) -> None:
    seed(salesforce.org)
    result = salesforce.sync(duckdb_warehouse_url, **SPEC)
    assert result.api.calls == salesforce.org.api_calls() == 4  # limits, describe, count, query
    assert (result.api.used, result.api.limit) == (4, 15000)


# -- logging in -----------------------------------------------------------------------------------


def test_wrong_credentials_fail_without_showing_the_password_or_token(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    auth = {"password": "Wrong-Pa55word!", "security_token": "TOKENxyz999"}

    with pytest.raises(SourceUnreachable, match=r"login refused: .*INVALID_LOGIN") as failure:
        salesforce.sync(duckdb_warehouse_url, settings={"auth": auth}, **SPEC)

    assert "Wrong-Pa55word!" not in str(failure.value)
    assert "TOKENxyz999" not in str(failure.value)


def test_oauth_jwt_bearer_logs_in_with_a_private_key(salesforce, duckdb_warehouse_url) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    salesforce.org.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    seed(salesforce.org)
    auth = {
        "password": None,
        "security_token": None,
        "consumer_key": salesforce.org.consumer_key,
        "private_key": pem,
    }

    assert salesforce.sync(duckdb_warehouse_url, settings={"auth": auth}, **SPEC).rows_read == 5


def test_oauth_client_credentials_log_in_on_a_my_domain(salesforce, duckdb_warehouse_url) -> None:
    seed(salesforce.org)
    auth = {
        "username": None,
        "password": None,
        "security_token": None,
        "consumer_key": salesforce.org.consumer_key,
        "consumer_secret": salesforce.org.consumer_secret,
    }

    assert salesforce.sync(duckdb_warehouse_url, settings={"auth": auth}, **SPEC).rows_read == 5


def test_an_unreachable_domain_fails_as_unreachable(salesforce, duckdb_warehouse_url) -> None:
    with pytest.raises(SourceUnreachable, match="cannot reach the login endpoint"):
        salesforce.sync(duckdb_warehouse_url, settings={"domain": "127.0.0.1:9/login"}, **SPEC)


def test_the_source_never_shows_a_secret_in_its_repr(salesforce) -> None:
    source = salesforce.source(auth={"consumer_secret": "cs-42", "private_key": "PEM-KEY"})
    try:
        text = repr(source.auth)
    finally:
        source.close()
    for secret in ("s3cret-Pa55", "TOKENabc123", "cs-42", "PEM-KEY"):
        assert secret not in text


def test_requests_ca_bundle_from_the_environment_does_not_override_the_configured_ca(
    salesforce, duckdb_warehouse_url, monkeypatch, tmp_path
) -> None:
    bogus = tmp_path / "other-ca.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    seed(salesforce.org)

    assert salesforce.sync(duckdb_warehouse_url, **SPEC).rows_read == 5


def test_a_certificate_the_configured_ca_does_not_trust_fails_clearly(
    salesforce, duckdb_warehouse_url, tmp_path
) -> None:
    from dw_pipelines.devservices.salesforce_fake import make_certificate

    other_ca, _ = make_certificate(tmp_path / "other")

    with pytest.raises(SourceUnreachable, match="TLS verification .* failed"):
        salesforce.sync(duckdb_warehouse_url, settings={"ca_bundle": str(other_ca)}, **SPEC)
