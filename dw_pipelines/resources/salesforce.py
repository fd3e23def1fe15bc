"""A Salesforce org read by the sync engine, through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.sync.sources.salesforce_defaults import DEFAULT_API_VERSION

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.salesforce import (
        SalesforceAuth,
        SalesforceSettings,
        SalesforceSource,
    )


class SalesforceResource(dg.ConfigurableResource):
    """One org. Log in with username + password + security_token, OAuth 2.0 JWT bearer
    (username + consumer_key + private_key), client credentials (consumer_key +
    consumer_secret, on a My Domain), or an existing session_id + instance_url.

    Give every secret as `dg.EnvVar`: Dagster then shows the variable's name, never its value.
    """

    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    private_key: str | None = None
    session_id: str | None = None
    instance_url: str | None = None
    domain: str = "login"
    """`login` (production), `test` (sandbox) or your My Domain, e.g. `acme.my`."""
    api_version: str = DEFAULT_API_VERSION
    ca_bundle: str | None = None
    """A CA file to trust instead of the system's (REQUESTS_CA_BUNDLE is ignored on purpose)."""
    bulk_threshold: int = 50_000
    """Reads of at least this many records use Bulk API 2.0; smaller ones REST query."""
    bulk_page_records: int = 50_000
    bulk_poll_seconds: float = 2.0
    bulk_timeout_seconds: float = 3600.0
    quota_share: float = 0.8
    """Fail before this share of the org's daily API requests is used."""
    max_retries: int = 3
    retry_backoff_seconds: float = 1.0
    request_timeout_seconds: float = 120.0
    name: str = "salesforce"

    def auth(self) -> SalesforceAuth:
        from dw_pipelines.sync.sources.salesforce import SalesforceAuth

        return SalesforceAuth(
            username=self.username,
            password=self.password,
            security_token=self.security_token,
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            private_key=self.private_key,
            session_id=self.session_id,
            instance_url=self.instance_url,
        )

    def settings(self) -> SalesforceSettings:
        from dw_pipelines.sync.sources.salesforce import SalesforceSettings

        return SalesforceSettings(
            domain=self.domain,
            api_version=self.api_version,
            ca_bundle=self.ca_bundle,
            bulk_threshold=self.bulk_threshold,
            bulk_page_records=self.bulk_page_records,
            bulk_poll_seconds=self.bulk_poll_seconds,
            bulk_timeout_seconds=self.bulk_timeout_seconds,
            quota_share=self.quota_share,
            max_retries=self.max_retries,
            retry_backoff_seconds=self.retry_backoff_seconds,
            request_timeout_seconds=self.request_timeout_seconds,
        )

    @contextmanager
    def open(self) -> Iterator[SalesforceSource]:
        from dw_pipelines.sync.sources.salesforce import SalesforceSource

        source = SalesforceSource(self.auth(), self.settings(), name=self.name)
        try:
            yield source
        finally:
            source.close()
