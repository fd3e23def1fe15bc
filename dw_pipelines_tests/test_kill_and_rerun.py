"""SIGKILL a sync anywhere, rerun it: the warehouse equals the source, no duplicate, no loss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dw_pipelines_tests.conftest import kill_child_at, query, run_sql, warehouse_rows

ROWS = 30_000
COLUMNS = "id, amount, note, updated_at"


def seed(source_url: str) -> None:
    run_sql(
        source_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note text,"
        " updated_at timestamptz NOT NULL)",
        f"INSERT INTO events SELECT g, (g % 100000) / 100.0 + 0.01, 'note ' || g,"
        f" '2026-01-01'::timestamptz + g * interval '1 millisecond'"
        f" FROM generate_series(1, {ROWS}) g",
    )


def churn(source_url: str) -> None:
    run_sql(
        source_url,
        "UPDATE events SET amount = amount + 1, note = 'changed', updated_at = now() WHERE id % 20 = 0",
        f"INSERT INTO events SELECT g, 7.77, 'new', now() FROM generate_series({ROWS + 1}, {ROWS + 3000}) g",
        "DELETE FROM events WHERE id = 3",  # incremental modes cannot see deletes; full refresh can
    )


def kill_at(source_url: str, warehouse_url: str, mode: str, marker: str) -> None:
    """SIGKILL a sync in a child process at `marker`: "batch N" once N batches were read, or
    "commit" just before the first commit after a batch (the one holding the data)."""
    word, _, number = marker.partition(" ")
    args = ["dw_pipelines_tests._sync_child", source_url, warehouse_url, mode]
    kill_child_at(args, word, int(number or 1), after=None if number else "batch")


def rerun(source_url: str, warehouse_url: str, mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dw_pipelines_tests._sync_child", source_url, warehouse_url, mode],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]


def source_rows(source_url: str) -> list[tuple]:
    return query(source_url, f"SELECT {COLUMNS} FROM events ORDER BY id, updated_at")


def loaded_rows(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url, f"SELECT {COLUMNS} FROM src.events ORDER BY id, updated_at"
    )


def expected_rows(mode: str, before: list[tuple], after: list[tuple]) -> list[tuple]:
    """What the warehouse must hold after syncing `before`, then `after`, in each mode."""
    if mode == "full_refresh":
        return after
    if mode == "incremental_append":  # every version of every row, once
        return sorted(set(before) | set(after))
    # merge: the current version of every row; the source's delete is not seen (no CDC here)
    current = {row[0]: row for row in before} | {row[0]: row for row in after}
    return sorted(current.values())


@pytest.mark.parametrize("marker", ["batch 3", "commit"])
@pytest.mark.parametrize("mode", ["full_refresh", "incremental_merge", "incremental_append"])
def test_rerun_after_kill_leaves_the_warehouse_equal_to_the_source(
    pg_source_url: str, warehouse_url: str, mode: str, marker: str
) -> None:
    seed(pg_source_url)
    rerun(pg_source_url, warehouse_url, mode)
    before = source_rows(pg_source_url)
    churn(pg_source_url)

    kill_at(pg_source_url, warehouse_url, mode, marker)
    rerun(pg_source_url, warehouse_url, mode)

    assert loaded_rows(warehouse_url) == expected_rows(mode, before, source_rows(pg_source_url))


def test_first_sync_killed_mid_load_leaves_no_table_and_no_state(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    seed(pg_source_url)
    kill_at(pg_source_url, duckdb_warehouse_url, "incremental_merge", "batch 3")

    tables = warehouse_rows(
        duckdb_warehouse_url,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema NOT IN ('_dw')",
    )
    assert tables == []
    assert warehouse_rows(duckdb_warehouse_url, "SELECT count(*) FROM _dw.stream_state") == [(0,)]
