"""A sync in a child process that announces where it is, and can stop there to be SIGKILLed.

It runs the real engine, source and warehouse; only the progress announcements are added
around them. With `STOP_AT` in its environment ("<word> <n>[ after <word>]"), the child stops
for good at the n-th line starting with that word, after saying "stopped at <word> #<n>": the
test's SIGKILL lands exactly in that phase, never later, and the test asserts which it was.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

import pyarrow as pa

from dw_pipelines.sync.engine import Window, sync_stream
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse

STOP_AT = "DW_TEST_STOP_AT"
_seen: Counter[str] = Counter()


def stop_spec(word: str, occurrence: int, after: str | None = None) -> str:
    return f"{word} {occurrence}" + (f" after {after}" if after else "")


def say(line: str) -> None:
    """Print a progress line; stop here for good if it is the phase `STOP_AT` names."""
    print(line, flush=True)
    spec = os.environ.get(STOP_AT)
    if not spec:
        return
    word, occurrence, *after = spec.split()
    first = line.split()[0]
    if after and not _seen[after[1]] and first != after[1]:
        return  # occurrences count only once the `after` phase has been reached
    _seen[first] += 1
    if first == word and _seen[first] == int(occurrence):
        print(f"stopped at {word} #{occurrence}", flush=True)
        while True:  # until the test's SIGKILL
            signal.pause()


def announce_loads_and_commits(warehouse) -> None:  # type: ignore[no-untyped-def]
    """Say "load" after each warehouse load, "commit" before and "committed" after each commit."""
    commit, load = warehouse.commit, warehouse.load

    def announced_commit() -> None:
        say("commit")
        commit()
        say("committed")

    def announced_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = load(*args, **kwargs)
        say("load")
        return rows

    warehouse.commit = announced_commit
    warehouse.load = announced_load


def announce_batches(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same batches, saying "batch N" after each."""

    def batches():  # type: ignore[no-untyped-def]
        for number, batch in enumerate(reader, start=1):
            yield batch
            say(f"batch {number}")

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def announce_commits(warehouse) -> None:  # type: ignore[no-untyped-def]
    """Say "commit" just before each warehouse commit."""
    commit = warehouse.commit

    def announced_commit() -> None:
        say("commit")
        commit()

    warehouse.commit = announced_commit


class AnnouncingSource(SqlSource):
    def read(self, request):  # type: ignore[no-untyped-def]
        return announce_batches(super().read(request))


def main() -> None:
    """Arguments: source URL, warehouse URL, mode[, window start, window end]."""
    source_url, warehouse_url, mode = sys.argv[1:4]
    window = Window(*sys.argv[4:6]) if len(sys.argv) > 4 else None
    warehouse = open_warehouse(warehouse_url)
    announce_loads_and_commits(warehouse)
    spec = StreamSpec(
        source="src", object="events", mode=mode, primary_key=["id"],  # type: ignore[arg-type]
        cursor="updated_at" if mode != "full_refresh" else None,
        lookback="1 minute" if mode != "full_refresh" else None,
    )  # fmt: skip
    result = sync_stream(
        spec,
        AnnouncingSource(source_url, name="src", batch_rows=5000, batch_bytes=256 << 10),
        warehouse,
        window=window,
    )
    warehouse.close()
    say(f"done {result.rows_read}")


if __name__ == "__main__":
    main()
