"""A Salesforce sync in a child process that announces where it is and can stop there to be
SIGKILLed.

It runs the real engine, SalesforceSource (against the fake org the test serves) and warehouse;
only the progress announcements (see `_sync_child`) are added.
"""

from __future__ import annotations

import json
import sys

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.sources.salesforce import (
    SalesforceAuth,
    SalesforceSettings,
    SalesforceSource,
)
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests._sync_child import announce_batches, announce_commits, say


class AnnouncingSource(SalesforceSource):
    def read(self, request):  # type: ignore[no-untyped-def]
        return announce_batches(super().read(request))


def main() -> None:
    config = json.loads(sys.argv[1])
    warehouse = open_warehouse(config["warehouse_url"])
    announce_commits(warehouse)
    source = AnnouncingSource(
        SalesforceAuth(**config["auth"]), SalesforceSettings(**config["settings"])
    )
    spec = StreamSpec(source="salesforce", **config["spec"])
    result = sync_stream(spec, source, warehouse)
    warehouse.close()
    source.close()
    say(f"done {result.rows_read}")


if __name__ == "__main__":
    main()
