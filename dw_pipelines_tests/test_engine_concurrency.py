"""Two runs of the same stream at once (a schedule overlapping a manual run) never duplicate."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests.conftest import query, run_sql, run_sync, warehouse_rows

RUNS = 3


def waiting_for_a_lock(warehouse_url: str, count: int, within_s: float = 120.0) -> int:
    """How many sessions wait for an advisory lock, once `count` do (or the deadline passes)."""
    deadline = time.monotonic() + within_s
    while True:
        (waiting,) = query(
            warehouse_url,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )[0]
        if waiting >= count or time.monotonic() > deadline:
            return waiting


def test_concurrent_syncs_of_one_stream_take_turns_and_load_each_row_once(
    pg_source_url: str, pg_warehouse_url: str
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE events (id int, payload text, ts timestamp NOT NULL)",
        "INSERT INTO events SELECT g, repeat('x', 200), '2026-01-01'::timestamp + g * interval '1 s'"
        " FROM generate_series(1, 20000) g",
    )
    spec = {"object": "events", "mode": "incremental_append", "cursor": "ts", "lookback": "1 hour"}
    # The test holds the stream's lock itself, so all runs are provably in flight at once:
    # each must queue behind it (and behind each other) rather than race.
    holder = open_warehouse(pg_warehouse_url)
    try:
        holder.begin()
        holder.lock_stream("src.events")
        with ThreadPoolExecutor(max_workers=RUNS) as pool:
            futures = [
                pool.submit(run_sync, pg_source_url, pg_warehouse_url, **spec) for _ in range(RUNS)
            ]
            overlapping = waiting_for_a_lock(pg_warehouse_url, RUNS)
            holder.commit()
            results = [f.result() for f in futures]
    finally:
        holder.close()

    assert overlapping == RUNS
    assert sorted(r.rows_inserted for r in results) == [0, 0, 20000]
    counts = warehouse_rows(pg_warehouse_url, "SELECT count(*), count(DISTINCT id) FROM src.events")
    assert counts == [(20000, 20000)]
