"""Fixtures for the REST source tests: one HTTPS fake API server per session, fresh data per
test, and a sync helper running the real engine, source (requests) and warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dw_pipelines.devservices.rest_fake import FakeApi, FakeServer, serve

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
HUBSPOT_TOKEN = "pat-na1-11111111-2222"

STRIPE_CUSTOMERS: dict[str, Any] = {
    "path": "/v1/customers",
    "params": {"limit": 3},
    "records": "data",
    "paginator": {"type": "cursor", "param": "starting_after", "from_record": "id"},
    "incremental": {"param": "created[gte]", "format": "unix"},
    "columns": {"id": "string", "created": "timestamptz"},
}
HUBSPOT_CONTACTS: dict[str, Any] = {
    "path": "/crm/v3/objects/contacts",
    "params": {"limit": 2},
    "records": "results",
    "paginator": {"type": "token", "from_body": "paging.next.after", "param": "after"},
    "columns": {"id": "string", "updatedAt": "timestamptz"},
    "flatten": {"email": "properties.email"},
}
HUBSPOT_CONTACTS_SEARCH: dict[str, Any] = {
    "path": "/crm/v3/objects/contacts/search",
    "method": "POST",
    "body": {
        "limit": 2,
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
    },
    "records": "results",
    "paginator": {
        "type": "token",
        "from_body": "paging.next.after",
        "param": "after",
        "location": "body",
    },
    "incremental": {
        "body": {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": "{lower}",
                        }
                    ]
                }
            ]
        },
        "format": "unix_ms",
    },
    "columns": {"id": "string", "updatedAt": "timestamptz"},
    "flatten": {"email": "properties.email"},
}
# The same search paged by asking again from the last record's time (the 10,000-result window).
HUBSPOT_CONTACTS_KEYSET: dict[str, Any] = {
    **HUBSPOT_CONTACTS_SEARCH,
    "paginator": {"type": "keyset", "from_record": "properties.hs_lastmodifieddate"},
}


@dataclass
class RestApiUnderTest:
    """The fake (data, faults, request log) and how to reach it."""

    api: FakeApi
    base_url: str
    ca: Path
    sleeps: list[float] = field(default_factory=list)

    def settings(self, endpoints: dict[str, Any], **overrides: Any):  # type: ignore[no-untyped-def]
        from dw_pipelines.sync.sources.rest.config import RestApi

        values: dict[str, Any] = {
            "base_url": self.base_url,
            "auth": {"type": "bearer", "token_env": "UNUSED_IN_ENGINE_TESTS"},
            "endpoints": endpoints,
            "backoff_seconds": 0.0,  # retries are real, their waits recorded, never slept
            "timeout_seconds": 5.0,
        }
        return RestApi.model_validate(values | overrides)

    def source(self, endpoints: dict[str, Any], secrets: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        from dw_pipelines.sync.sources.rest.client import Secrets
        from dw_pipelines.sync.sources.rest.source import RestSource

        values = {"token": STRIPE_KEY, "ca_bundle": str(self.ca)} | (secrets or {})
        return RestSource("api", self.settings(endpoints, **kw), Secrets(**values), self.sleep)

    def sleep(self, seconds: float) -> None:
        """The source's sleep: recorded, and the fake's rate-limit clock moved, never slept."""
        self.sleeps.append(seconds)
        self.api.advance(seconds)

    def sync(  # type: ignore[no-untyped-def]
        self,
        warehouse_url: str,
        endpoints: dict[str, Any],
        *,
        secrets: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        **spec: Any,
    ):
        """One sync of stream `api.<object>`; the result carries the source's `usage`."""
        from dw_pipelines.sync.engine import sync_stream
        from dw_pipelines.sync.spec import StreamSpec
        from dw_pipelines.sync.warehouses import open_warehouse

        spec.setdefault("primary_key", ["id"])
        source = self.source(endpoints, secrets, **(settings or {}))
        warehouse = open_warehouse(warehouse_url)
        try:
            result = sync_stream(StreamSpec(source="api", **spec), source, warehouse)
            result.usage = source.client.usage  # type: ignore[attr-defined]
            return result
        finally:
            warehouse.close()
            source.close()


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeServer, Path]]:
    server, ca = serve(tmp_path_factory.mktemp("rest_tls"))
    yield server, ca
    server.stop()


@pytest.fixture
def rest(rest_server) -> RestApiUnderTest:  # type: ignore[no-untyped-def]
    """The session's server with fresh, empty data and no faults."""
    server, ca = rest_server
    server.api = FakeApi()
    return RestApiUnderTest(server.api, server.base_url, ca)
