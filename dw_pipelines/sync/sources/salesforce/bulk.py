"""Bulk API 2.0 query jobs through the documented endpoints, on the project's own session:

- `POST jobs/query` creates a job, `GET jobs/query/{id}` polls it;
- `GET jobs/query/{id}/results?locator=&maxRecords=` returns one CSV page, with the next
  page's `Sforce-Locator` ("null" after the last) and the page's `Sforce-NumberOfRecords`;
- `PATCH jobs/query/{id}` `{"state": "Aborted"}` aborts it, `DELETE jobs/query/{id}` deletes it;
- `GET jobs/query?jobType=V2Query` lists the org's jobs (paged by `nextRecordsUrl`).

A job creation whose answer is lost may still have created the job. Creating another would
leave that one running, unseen, against the org's daily Bulk job limit; so before trying again
we abort the running query jobs this user created on the object since the lost request left.
Job records do not carry their query, so a job of a concurrent reader of the same object by
the same user, created in those seconds, is aborted too: that reader fails and is retried; no
reader ever loads another's rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.sources.salesforce.client import BulkJobFailed, SalesforceClient

_RUNNING = ("UploadComplete", "InProgress")
# The `Date` header has whole seconds: widen the window by one so a job is never missed.
_DATE_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class BulkPage:
    csv: str
    number_of_records: int  # Sforce-NumberOfRecords: what the page says it holds
    locator: str  # the next page's; "" after the last


class BulkQuery:
    """Query jobs on one object, each call through `client.call` (quota, re-login, retries)."""

    def __init__(self, client: SalesforceClient, obj: str) -> None:
        self.client, self.obj = client, obj

    def create(self, soql: str) -> dict[str, Any]:
        """A new query job's info; no orphan of a lost answer left running (module doc)."""
        left = time.monotonic()

        def post(sf: Any) -> dict[str, Any]:
            body = {"operation": "query", "query": soql}
            return self.client.request(sf, "POST", "jobs/query", json=body).json()  # type: ignore[no-any-return]

        def abort_orphans() -> None:
            try:
                self.abort_running_created_within(time.monotonic() - left)
            except SyncError as exc:
                raise BulkJobFailed(
                    f"Salesforce '{self.client.name}': creating a Bulk 2.0 job on {self.obj} got"
                    " no answer, and whether it created one could not be checked; nothing was"
                    f" loaded: {exc}"
                ) from None

        return self.client.call(post, self.obj, on_timeout=abort_orphans)

    def info(self, job_id: str) -> dict[str, Any]:
        return self.client.call(  # type: ignore[no-any-return]
            lambda sf: self.client.request(sf, "GET", f"jobs/query/{job_id}").json(), self.obj
        )

    def abort(self, job_id: str) -> None:
        self.client.call(
            lambda sf: self.client.request(
                sf, "PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"}
            ),
            self.obj,
        )

    def delete(self, job_id: str) -> None:
        self.client.call(
            lambda sf: self.client.request(sf, "DELETE", f"jobs/query/{job_id}"), self.obj
        )

    def pages(self, job_id: str, max_records: int) -> Iterator[BulkPage]:
        """The job's results, page by page, following `Sforce-Locator`."""
        locator = ""
        while True:
            params: dict[str, Any] = {"maxRecords": max_records}
            if locator:
                params["locator"] = locator
            response = self.client.call(
                lambda sf, p=params: self.client.request(
                    sf, "GET", f"jobs/query/{job_id}/results", accept="text/csv", params=p
                ),
                self.obj,
            )
            locator = response.headers.get("Sforce-Locator", "")
            if locator == "null":
                locator = ""
            # NUL bytes are not valid in CSV and Salesforce may pass them through from data.
            yield BulkPage(
                response.content.decode("utf-8").replace("\x00", ""),
                int(response.headers["Sforce-NumberOfRecords"]),
                locator,
            )
            if not locator:
                return

    def abort_running_created_within(self, seconds: float) -> list[str]:
        """Abort this user's running query jobs on the object created in the last `seconds`
        (by the org's clock); their ids."""
        user = self.client.user_id()
        aborted = []
        for job, now in self._jobs():
            created = datetime.strptime(job["createdDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
            if (
                job.get("object") == self.obj
                and job.get("operation") == "query"
                and job.get("createdById") == user
                and job.get("state") in _RUNNING
                and created >= now - timedelta(seconds=seconds) - _DATE_RESOLUTION
            ):
                self.abort(job["id"])
                aborted.append(job["id"])
        return aborted

    def _jobs(self) -> Iterator[tuple[dict[str, Any], datetime]]:
        """Every Bulk 2.0 query job of the org, with the org's time when its page was served."""
        path = "jobs/query?jobType=V2Query"
        while path:
            response = self.client.call(
                lambda sf, at=path: self.client.request(sf, "GET", at), self.obj
            )
            now = parsedate_to_datetime(response.headers["Date"])
            listing = response.json()
            for job in listing.get("records", []):
                yield job, now
            path = "" if listing.get("done", True) else listing.get("nextRecordsUrl") or ""
