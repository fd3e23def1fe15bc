"""Bulk API 2.0 reads when the network misbehaves: a job creation whose answer is lost leaves
no duplicate job running, and the read-ahead thread neither shares a session nor waits forever."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dw_pipelines.devservices.salesforce_fake import BulkJob
from dw_pipelines.sync.errors import SourceUnreachable
from dw_pipelines.sync.sources.salesforce import read_ahead

SPEC = {"object": "Account", "mode": "full_refresh"}
BULK = {"bulk_threshold": 1, "request_timeout_seconds": 0.3}


def seed(org, n: int = 5) -> list[str]:  # type: ignore[no-untyped-def]
    return [org.insert("Account", Name=f"Account {i}") for i in range(n)]


def job_states(org, obj: str = "Account") -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(job.state for job in org.jobs.values() if job.object == obj)


def test_a_job_creation_whose_answer_is_lost_leaves_no_duplicate_job_running(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.server.hang_seconds = 0.6
    salesforce.org.lose_answer("/jobs/query", method="POST")

    result = salesforce.sync(duckdb_warehouse_url, settings=BULK, **SPEC)

    assert result.rows_read == 5
    assert result.api.bulk_jobs == 1
    assert job_states(salesforce.org) == ["Aborted"]  # the job read from was deleted after


def test_after_a_lost_job_creation_jobs_on_other_objects_keep_running(
    salesforce, duckdb_warehouse_url
) -> None:
    org = salesforce.org
    seed(org)
    for n in range(3):  # listed one job a page: the orphan is found on a later page
        org.jobs[f"750other{n}"] = BulkJob(
            f"750other{n}", "Contact", "query", "SELECT Id FROM Contact", [], ["Id"], 10**6
        )
    org.jobs_page_size = 1
    salesforce.server.hang_seconds = 0.6
    org.lose_answer("/jobs/query", method="POST")

    salesforce.sync(duckdb_warehouse_url, settings=BULK, **SPEC)

    assert job_states(org, "Contact") == ["UploadComplete"] * 3
    assert job_states(org) == ["Aborted"]


def test_a_job_creation_that_never_answers_fails_without_leaving_a_job_running(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org)
    salesforce.server.hang_seconds = 0.6
    salesforce.org.lose_answer("/jobs/query", method="POST", times=4)

    with pytest.raises(SourceUnreachable, match="no answer after 3 retries"):
        salesforce.sync(duckdb_warehouse_url, settings=BULK, **SPEC)

    assert job_states(salesforce.org) == ["Aborted"] * 4


def test_a_bulk_job_is_deleted_once_all_its_rows_are_read(salesforce, duckdb_warehouse_url) -> None:
    seed(salesforce.org)

    result = salesforce.sync(duckdb_warehouse_url, settings={"bulk_threshold": 1}, **SPEC)

    assert result.rows_read == 5
    assert result.api.bulk_jobs == 1
    assert not salesforce.org.jobs


def test_result_pages_are_fetched_on_a_connection_of_their_own(
    salesforce, duckdb_warehouse_url
) -> None:
    seed(salesforce.org, 30)

    salesforce.sync(
        duckdb_warehouse_url, settings={"bulk_threshold": 1, "bulk_page_records": 8}, **SPEC
    )

    ports = salesforce.org.ports
    pages = {port for path, port in ports if path.endswith("/results")}
    others = {port for path, port in ports if not path.endswith("/results")}
    assert pages and not pages & others


def test_read_ahead_gives_up_when_the_next_item_does_not_come_in_time() -> None:
    release = threading.Event()

    def stuck() -> Iterator[int]:
        yield 1
        release.wait()  # a page download that hangs until the test ends
        yield 2

    items = read_ahead(stuck(), timeout=0.2, what="the next page")
    try:
        assert next(items) == 1
        with pytest.raises(SourceUnreachable, match="the next page did not come within 0.2s"):
            next(items)
    finally:
        release.set()


def test_read_ahead_stops_producing_once_the_consumer_has_gone() -> None:
    stopped = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            stopped.set()

    items = read_ahead(endless(), timeout=5)
    assert next(items) == 1
    items.close()

    assert stopped.wait(timeout=5)


def test_read_ahead_hands_over_the_producers_error_in_order() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 is broken")

    items = read_ahead(failing(), timeout=5)
    assert next(items) == 1
    with pytest.raises(ValueError, match="page 2 is broken"):
        next(items)
