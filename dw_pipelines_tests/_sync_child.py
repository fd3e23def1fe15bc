"""A sync in a child process that announces where it is, so a test can SIGKILL it there.

It runs the real engine, source and warehouse; only the progress announcements (and a pause
that widens the window for the kill) are added around them.
"""

from __future__ import annotations

import sys
import time

import pyarrow as pa

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse


def say(word: str) -> None:
    print(word, flush=True)


def announce_loads_and_commits(warehouse, pause_s: float) -> None:  # type: ignore[no-untyped-def]
    """Say "load" after each warehouse load, "commit" before and "committed" after each commit,
    pausing `pause_s` after each so the test's kill lands there."""
    commit, load = warehouse.commit, warehouse.load

    def announced_commit() -> None:
        say("commit")
        time.sleep(pause_s)
        commit()
        say("committed")
        time.sleep(pause_s)

    def announced_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = load(*args, **kwargs)
        say("load")
        time.sleep(pause_s)
        return rows

    warehouse.commit = announced_commit
    warehouse.load = announced_load


def announce_batches(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same batches, saying "batch N" after each (and pausing, to widen the kill window)."""

    def batches():  # type: ignore[no-untyped-def]
        for number, batch in enumerate(reader, start=1):
            yield batch
            say(f"batch {number}")
            time.sleep(0.05)

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def announce_commits(warehouse, pause_s: float = 0.5) -> None:  # type: ignore[no-untyped-def]
    """Say "commit" just before each warehouse commit, and pause there."""
    commit = warehouse.commit

    def announced_commit() -> None:
        say("commit")
        time.sleep(pause_s)
        commit()

    warehouse.commit = announced_commit


class AnnouncingSource(SqlSource):
    def read(self, request):  # type: ignore[no-untyped-def]
        return announce_batches(super().read(request))


def main() -> None:
    source_url, warehouse_url, mode = sys.argv[1:4]
    warehouse = open_warehouse(warehouse_url)
    announce_commits(warehouse)
    spec = StreamSpec(
        source="src", object="events", mode=mode, primary_key=["id"],  # type: ignore[arg-type]
        cursor="updated_at" if mode != "full_refresh" else None,
        lookback="1 minute" if mode != "full_refresh" else None,
    )  # fmt: skip
    result = sync_stream(
        spec,
        AnnouncingSource(source_url, name="src", batch_rows=5000, batch_bytes=256 << 10),
        warehouse,
    )
    warehouse.close()
    say(f"done {result.rows_read}")


if __name__ == "__main__":
    main()
