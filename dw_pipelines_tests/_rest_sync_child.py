"""A REST sync in a child process that announces its batches and commits and can stop there to
be SIGKILLed (see `_sync_child`). Real engine, source (requests to the fake API over HTTPS) and
warehouse; the API key comes from the environment (`T_REST_KEY`), never from argv."""

from __future__ import annotations

import os
import sys

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.sources.rest.client import Secrets
from dw_pipelines.sync.sources.rest.config import RestApi
from dw_pipelines.sync.sources.rest.source import RestSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests._sync_child import announce_batches, announce_commits, say
from dw_pipelines_tests.rest_fixtures import STRIPE_CUSTOMERS


class AnnouncingSource(RestSource):
    def read(self, request):  # type: ignore[no-untyped-def]
        return announce_batches(super().read(request))


def main() -> None:
    base_url, ca, warehouse_url = sys.argv[1:4]
    api = RestApi.model_validate(
        {
            "base_url": base_url,
            "auth": {"type": "bearer", "token_env": "T_REST_KEY"},
            "endpoints": {"customers": {**STRIPE_CUSTOMERS, "params": {"limit": 100}}},
            "batch_rows": 100,
            "backoff_seconds": 0,
        }
    )
    source = AnnouncingSource("api", api, Secrets(token=os.environ["T_REST_KEY"], ca_bundle=ca))
    warehouse = open_warehouse(warehouse_url)
    announce_commits(warehouse)
    spec = StreamSpec(
        source="api",
        object="customers",
        mode="incremental_merge",  # type: ignore[arg-type]
        primary_key=("id",),
        cursor="created",
    )
    result = sync_stream(spec, source, warehouse)
    warehouse.close()
    source.close()
    say(f"done {result.rows_read}")


if __name__ == "__main__":
    main()
