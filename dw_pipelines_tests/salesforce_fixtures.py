"""Fixtures for the Salesforce tests: a fresh fake org over HTTPS per test, and sync helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dw_pipelines.devservices.salesforce_fake import FakeOrg, FakeServer, make_certificate

# Fast but real: every knob a test does not set is the production default.
FAST = {
    "bulk_poll_seconds": 0.01,
    "retry_backoff_seconds": 0.01,
    "request_timeout_seconds": 2.0,
}


@dataclass
class Salesforce:
    org: FakeOrg
    server: FakeServer
    ca: Path

    @property
    def domain(self) -> str:
        return self.server.domain

    def auth(self, **overrides: Any):  # type: ignore[no-untyped-def]
        from dw_pipelines.sync.sources.salesforce import SalesforceAuth

        values: dict[str, Any] = {
            "username": self.org.username,
            "password": self.org.password,
            "security_token": self.org.security_token,
        }
        return SalesforceAuth(**(values | overrides))

    def settings(self, **overrides: Any):  # type: ignore[no-untyped-def]
        from dw_pipelines.sync.sources.salesforce import SalesforceSettings

        values: dict[str, Any] = {
            "domain": self.domain,
            "ca_bundle": str(self.ca),
            "api_version": self.org.api_version,
            "bulk_threshold": 1_000_000,
        }
        return SalesforceSettings(**(values | FAST | overrides))

    def source(self, auth: dict[str, Any] | None = None, **settings: Any):  # type: ignore[no-untyped-def]
        from dw_pipelines.sync.sources.salesforce import SalesforceSource

        return SalesforceSource(
            self.auth(**(auth or {})), self.settings(**settings), name="salesforce"
        )

    def sync(  # type: ignore[no-untyped-def]
        self,
        warehouse_url: str,
        *,
        settings: dict[str, Any] | None = None,
        window: Any = None,
        **spec: Any,
    ):
        """One sync of stream `salesforce.<object>` with real engine, source and warehouse."""
        from dw_pipelines.sync.engine import sync_stream
        from dw_pipelines.sync.spec import StreamSpec
        from dw_pipelines.sync.warehouses import open_warehouse

        spec.setdefault("primary_key", ["Id"])
        source = self.source(**(settings or {}))
        warehouse = open_warehouse(warehouse_url)
        try:
            result = sync_stream(
                StreamSpec(source="salesforce", **spec), source, warehouse, window=window
            )
            result.api = source.usage  # type: ignore[attr-defined]
            return result
        finally:
            warehouse.close()
            source.close()


@pytest.fixture(scope="session")
def salesforce_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("salesforce_tls"))


@pytest.fixture
def salesforce(salesforce_certificate: tuple[Path, Path]) -> Iterator[Salesforce]:
    """A fresh fake org (no records) served over HTTPS on a free port."""
    cert, key = salesforce_certificate
    org = FakeOrg()
    server = FakeServer(org, cert, key).start()
    try:
        yield Salesforce(org, server, cert)
    finally:
        server.stop()
