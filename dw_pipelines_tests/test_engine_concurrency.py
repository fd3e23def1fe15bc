"""Two runs of the same stream at once (a schedule overlapping a manual run) never duplicate."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from dw_pipelines_tests.conftest import run_sql, run_sync, warehouse_rows


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

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(lambda _: run_sync(pg_source_url, pg_warehouse_url, **spec), range(3))
        )

    assert sorted(r.rows_inserted for r in results) == [0, 0, 20000]
    counts = warehouse_rows(pg_warehouse_url, "SELECT count(*), count(DISTINCT id) FROM src.events")
    assert counts == [(20000, 20000)]
