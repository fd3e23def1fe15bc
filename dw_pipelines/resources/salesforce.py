"""A Salesforce org read by the sync engine, through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.resources.env import read_env
from dw_pipelines.sync.sources.salesforce_defaults import DEFAULT_API_VERSION

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.salesforce import (
        SalesforceAuth,
        SalesforceSettings,
        SalesforceSource,
    )


class SalesforceOrg(dg.Config):
    """How to reach a Salesforce org: the YAML's `salesforce:` block and the resource's config
    at once. Credentials are named by environment variable, never written here: give the set
    for one way of logging in (password + token, JWT, client credentials, or session id +
    instance URL)."""

    username_env: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    consumer_key_env: str | None = None
    consumer_secret_env: str | None = None
    private_key_env: str | None = None
    """The PEM private key of the connected app's certificate (OAuth 2.0 JWT bearer)."""
    session_id_env: str | None = None
    instance_url_env: str | None = None
    domain: str = "login"
    """`login`, `test` (sandbox) or a My Domain such as `acme.my`."""
    domain_env: str | None = None
    """Takes the domain from this environment variable instead (one per deployment)."""
    ca_bundle_env: str | None = None
    """A CA file to trust instead of the system's (REQUESTS_CA_BUNDLE is ignored on purpose)."""
    api_version: str = DEFAULT_API_VERSION
    bulk_threshold: int = 50_000
    """Reads of at least this many records use Bulk API 2.0 query jobs, smaller ones REST."""
    bulk_page_records: int = 50_000
    bulk_poll_seconds: float = 2.0
    bulk_timeout_seconds: float = 3600.0
    quota_share: float = 0.8
    """A sync fails before the org has used this share of its daily API requests."""
    max_retries: int = 3
    """Retries of a call failing with 5xx, UNABLE_TO_LOCK_ROW or a timeout (backoff doubles)."""
    retry_backoff_seconds: float = 1.0
    request_timeout_seconds: float = 120.0


class SalesforceResource(SalesforceOrg, dg.ConfigurableResource):
    """One org. The variables the settings name are read when a sync opens the org, so an
    unset one fails that org's streams only and no secret is ever part of Dagster's config."""

    name: str = "salesforce"

    def _env(self, variable: str | None, setting: str) -> str | None:
        return read_env(self.name, variable, f"salesforce.{setting}")

    def auth(self) -> SalesforceAuth:
        from dw_pipelines.sync.sources.salesforce import SalesforceAuth

        return SalesforceAuth(
            username=self._env(self.username_env, "username_env"),
            password=self._env(self.password_env, "password_env"),
            security_token=self._env(self.security_token_env, "security_token_env"),
            consumer_key=self._env(self.consumer_key_env, "consumer_key_env"),
            consumer_secret=self._env(self.consumer_secret_env, "consumer_secret_env"),
            private_key=self._env(self.private_key_env, "private_key_env"),
            session_id=self._env(self.session_id_env, "session_id_env"),
            instance_url=self._env(self.instance_url_env, "instance_url_env"),
        )

    def settings(self) -> SalesforceSettings:
        from dw_pipelines.sync.sources.salesforce import SalesforceSettings

        return SalesforceSettings(
            domain=self._env(self.domain_env, "domain_env") or self.domain,
            api_version=self.api_version,
            ca_bundle=self._env(self.ca_bundle_env, "ca_bundle_env"),
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
