"""A CDC run in a child process that announces where it is and can stop there to be SIGKILLed.

It runs the real runner, source, replication connection and warehouse; only announcements
(see `_sync_child`) are added around three points: snapshot batches read, changes loaded into
the warehouse, and the warehouse commit.
"""

from __future__ import annotations

import sys

from dw_pipelines.sync.cdc.runner import CdcOptions, sync_postgres_cdc
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests._sync_child import AnnouncingSource, announce_loads_and_commits, say


def main() -> None:
    """argv: source URL, warehouse URL, optionally `--resnapshot`, `--objects a,b` and
    `--slot name` (the slot's and the publication's name, instead of the default `dw_src`)."""
    source_url, warehouse_url, *flags = sys.argv[1:]
    resnapshot = "--resnapshot" in flags
    objects = flags[flags.index("--objects") + 1].split(",") if "--objects" in flags else ["events"]
    slot = flags[flags.index("--slot") + 1] if "--slot" in flags else None
    warehouse = open_warehouse(warehouse_url)
    announce_loads_and_commits(warehouse)
    specs = [StreamSpec(source="src", object=o, mode="cdc") for o in objects]  # type: ignore[arg-type]
    source = AnnouncingSource(source_url, name="src", batch_bytes=128 << 10)
    result = sync_postgres_cdc(
        "src",
        specs,
        source,
        warehouse,
        options=CdcOptions(slot=slot, publication=slot, batch_changes=700, commit_interval_s=0.0),
        resnapshot=resnapshot,
    )
    warehouse.close()
    say(f"done {result.transactions}")


if __name__ == "__main__":
    main()
