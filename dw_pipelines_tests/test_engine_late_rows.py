"""Late-committing transactions on PostgreSQL sources: read without guessing a lookback.

A transaction stamps `updated_at` when it begins and commits after a sync has read past that
stamp. Every cursor-based tool misses its rows unless the lookback is long enough; PostgreSQL
tells us which transactions are still open when we read, so the next read starts no later
than the oldest of them.
"""

from __future__ import annotations

import psycopg

from dw_pipelines_tests.conftest import run_sql, run_sync, warehouse_rows


def create_events(url: str) -> None:
    run_sql(
        url,
        "CREATE TABLE events (id bigint PRIMARY KEY, note text NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now())",
    )


def sync(source_url: str, duckdb_warehouse_url: str):  # type: ignore[no-untyped-def]
    return run_sync(
        source_url,
        duckdb_warehouse_url,
        object="events",
        mode="incremental_merge",
        primary_key=["id"],
        cursor="updated_at",
        lookback=0,
    )


def loaded_ids(warehouse_url: str) -> list[int]:
    return [r[0] for r in warehouse_rows(warehouse_url, "SELECT id FROM src.events ORDER BY id")]


def test_a_transaction_held_open_across_syncs_is_read_after_it_commits_with_no_lookback(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_events(pg_source_url)
    run_sql(pg_source_url, "INSERT INTO events (id, note) VALUES (1, 'before')")
    with psycopg.connect(pg_source_url) as late:
        # Stamped now (its transaction's start), committed only after three syncs.
        late.execute("INSERT INTO events (id, note) VALUES (100, 'late')")
        for i in range(2, 5):
            run_sql(pg_source_url, f"INSERT INTO events (id, note) VALUES ({i}, 'on time')")
            sync(pg_source_url, duckdb_warehouse_url)
            assert 100 not in loaded_ids(duckdb_warehouse_url)
        late.commit()

    result = sync(pg_source_url, duckdb_warehouse_url)

    assert loaded_ids(duckdb_warehouse_url) == [1, 2, 3, 4, 100]
    assert result.late_row_guard == "open transactions"


def test_the_lower_bound_returns_to_the_cursor_once_no_transaction_is_open(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_events(pg_source_url)
    run_sql(pg_source_url, "INSERT INTO events (id, note) VALUES (1, 'a')")
    run_sql(pg_source_url, "INSERT INTO events (id, note) VALUES (2, 'b')")
    sync(pg_source_url, duckdb_warehouse_url)
    run_sql(pg_source_url, "INSERT INTO events (id, note) VALUES (3, 'c')")

    result = sync(pg_source_url, duckdb_warehouse_url)

    # The row at the cursor (>=) and the new one, not the whole table.
    assert result.rows_read == 2
    assert loaded_ids(duckdb_warehouse_url) == [1, 2, 3]


def test_without_sight_of_other_sessions_the_lookback_alone_guards_and_says_so(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_events(pg_source_url)
    role = f"dw_reader_{pg_source_url.rsplit('_', 1)[-1]}"
    run_sql(
        pg_source_url,
        f"CREATE ROLE {role} LOGIN",
        f"GRANT SELECT ON events TO {role}",
        "INSERT INTO events (id, note) VALUES (1, 'a')",
    )
    try:
        result = sync(pg_source_url.replace("postgres@", f"{role}@"), duckdb_warehouse_url)
    finally:
        run_sql(pg_source_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")

    assert result.late_row_guard.startswith("lookback only: the role cannot see")
    assert result.read_horizon is None
