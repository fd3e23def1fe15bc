"""Sync modes against real sources (PostgreSQL, MariaDB) and warehouses (DuckDB, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from dw_pipelines.sync.engine import Window
from dw_pipelines_tests.conftest import query, run_sql, run_sync, warehouse_rows

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)


def ts_type(url: str) -> str:
    return "timestamp(6)" if url.startswith("postgresql") else "datetime(6)"


def create_orders(url: str, rows: list[tuple[int, str, str, datetime]]) -> None:
    run_sql(
        url,
        f"CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20) NOT NULL,"
        f" amount decimal(12,2) NOT NULL, updated_at {ts_type(url)} NOT NULL)",
    )
    insert(url, rows)


def insert(url: str, rows: list[tuple[int, str, str, datetime]]) -> None:
    values = ", ".join(f"({i}, '{s}', {a}, '{t.isoformat(sep=' ')}')" for i, s, a, t in rows)
    run_sql(url, f"INSERT INTO orders (id, status, amount, updated_at) VALUES {values}")


def source_orders(url: str) -> list[tuple]:
    return query(url, "SELECT id, status, amount, updated_at FROM orders ORDER BY id, updated_at")


def loaded_orders(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url,
        "SELECT id, status, amount, updated_at FROM src.orders ORDER BY id, updated_at",
    )


def sync(source_url: str, warehouse_url: str, mode: str, **kwargs: object):  # type: ignore[no-untyped-def]
    keyed = {"primary_key": ["id"], "cursor": "updated_at"} if mode != "full_refresh" else {}
    return run_sync(
        source_url, warehouse_url, object="orders", mode=mode, batch_rows=2, **keyed, **kwargs
    )


def test_full_refresh_replaces_the_table_so_source_deletes_disappear(
    source_url: str, warehouse_url: str
) -> None:
    create_orders(
        source_url, [(1, "paid", "10.50", T0), (2, "new", "3.99", T0), (3, "new", "1", T0)]
    )
    sync(source_url, warehouse_url, "full_refresh")
    run_sql(
        source_url, "DELETE FROM orders WHERE id = 2", "UPDATE orders SET status = 'x' WHERE id = 3"
    )

    result = sync(source_url, warehouse_url, "full_refresh", primary_key=["id"])

    assert result.rows_read == 2 and result.row_count == 2
    assert loaded_orders(warehouse_url) == source_orders(source_url)


def test_incremental_merge_upserts_changed_rows_on_the_primary_key(
    source_url: str, warehouse_url: str
) -> None:
    create_orders(source_url, [(1, "new", "10.50", T0), (2, "new", "3.99", T0)])
    first = sync(source_url, warehouse_url, "incremental_merge")
    later = T0 + timedelta(hours=1)
    run_sql(source_url, f"UPDATE orders SET status = 'paid', updated_at = '{later}' WHERE id = 2")
    insert(source_url, [(3, "new", "0.01", later)])

    second = sync(source_url, warehouse_url, "incremental_merge")

    assert (first.rows_inserted, first.cursor_after) == (2, T0)
    # row 1 sits at the stored cursor value, so it is re-read (>=) and found unchanged
    assert (second.rows_read, second.rows_inserted, second.rows_updated) == (3, 1, 1)
    assert second.rows_unchanged == 1
    assert second.cursor_before == T0 and second.cursor_after == later
    assert second.row_count == 3
    assert loaded_orders(warehouse_url) == source_orders(source_url)
    assert loaded_orders(warehouse_url)[2][2] == Decimal("0.01")


def test_incremental_append_never_duplicates_rows_reread_by_the_lookback(
    source_url: str, warehouse_url: str
) -> None:
    create_orders(
        source_url, [(1, "new", "1.00", T0), (2, "new", "2.00", T0 + timedelta(seconds=1))]
    )
    sync(source_url, warehouse_url, "incremental_append", lookback="1 hour")
    insert(source_url, [(3, "new", "3.00", T0 + timedelta(seconds=2))])

    result = sync(source_url, warehouse_url, "incremental_append", lookback="1 hour")

    assert (result.rows_read, result.rows_inserted, result.rows_unchanged) == (3, 1, 2)
    assert loaded_orders(warehouse_url) == source_orders(source_url)


def test_incremental_append_keeps_every_version_of_an_updated_row(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_orders(pg_source_url, [(1, "new", "1.00", T0)])
    sync(pg_source_url, duckdb_warehouse_url, "incremental_append")
    run_sql(pg_source_url, f"UPDATE orders SET status = 'paid', updated_at = '{T0 + timedelta(1)}'")

    sync(pg_source_url, duckdb_warehouse_url, "incremental_append")

    assert [r[1] for r in loaded_orders(duckdb_warehouse_url)] == ["new", "paid"]


def test_a_row_committed_later_at_the_boundary_cursor_value_is_loaded_once(
    pg_source_url: str, warehouse_url: str
) -> None:
    create_orders(pg_source_url, [(1, "new", "1.00", T0), (2, "new", "2.00", T0)])
    sync(pg_source_url, warehouse_url, "incremental_merge")
    insert(pg_source_url, [(3, "new", "3.00", T0)])  # exactly the stored cursor value

    result = sync(pg_source_url, warehouse_url, "incremental_merge")

    assert (result.rows_inserted, result.rows_unchanged) == (1, 2)
    assert loaded_orders(warehouse_url) == source_orders(pg_source_url)


def test_the_lookback_catches_a_transaction_that_committed_late_with_an_older_cursor(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_orders(pg_source_url, [(1, "new", "1.00", T0)])
    sync(pg_source_url, duckdb_warehouse_url, "incremental_merge", lookback="1 minute")
    with psycopg.connect(pg_source_url) as slow:
        # Stamped at T0+1s but committed only after a later row has been synced.
        slow.execute(f"INSERT INTO orders VALUES (2, 'slow', 2.00, '{T0 + timedelta(seconds=1)}')")
        insert(pg_source_url, [(3, "fast", "3.00", T0 + timedelta(seconds=5))])
        missed = sync(pg_source_url, duckdb_warehouse_url, "incremental_merge", lookback="1 minute")
        slow.commit()

    caught = sync(pg_source_url, duckdb_warehouse_url, "incremental_merge", lookback="1 minute")

    assert (missed.rows_inserted, missed.cursor_after) == (1, T0 + timedelta(seconds=5))
    assert (caught.rows_inserted, caught.rows_unchanged) == (1, 2)  # rows 1 and 3 re-read
    assert loaded_orders(duckdb_warehouse_url) == source_orders(pg_source_url)


def test_a_window_loads_only_its_range_and_leaves_the_cursor_where_it_was(
    pg_source_url: str, warehouse_url: str
) -> None:
    day = timedelta(days=1)
    create_orders(pg_source_url, [(1, "a", "1.00", T0), (2, "b", "2.00", T0 + day)])
    sync(pg_source_url, warehouse_url, "incremental_merge")
    state_before = warehouse_rows(warehouse_url, "SELECT state FROM _dw.stream_state")
    insert(pg_source_url, [(3, "old", "3.00", T0 - 3 * day), (4, "older", "4.00", T0 - 9 * day)])

    result = sync(
        pg_source_url,
        warehouse_url,
        "incremental_merge",
        window=Window((T0 - 5 * day).isoformat(), T0.isoformat()),
    )

    assert (result.rows_read, result.rows_inserted) == (1, 1)
    assert result.cursor_after == result.cursor_before == T0 + day
    state_after = warehouse_rows(warehouse_url, "SELECT state FROM _dw.stream_state")
    assert json.loads(state_after[0][0])["position"] == json.loads(state_before[0][0])["position"]
    assert [r[0] for r in loaded_orders(warehouse_url)] == [1, 2, 3]


def test_a_rerun_without_source_changes_writes_nothing(source_url: str, warehouse_url: str) -> None:
    create_orders(source_url, [(1, "new", "1.00", T0), (2, "new", "2.00", T0)])
    sync(source_url, warehouse_url, "incremental_merge", lookback="1 day")
    synced_at = warehouse_rows(warehouse_url, "SELECT max(_dw_synced_at) FROM src.orders")

    result = sync(source_url, warehouse_url, "incremental_merge", lookback="1 day")

    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 0, 2)
    assert warehouse_rows(warehouse_url, "SELECT max(_dw_synced_at) FROM src.orders") == synced_at


def test_each_successful_sync_is_logged_in_the_warehouse_with_the_data(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    create_orders(pg_source_url, [(1, "new", "1.00", T0)])
    sync(pg_source_url, duckdb_warehouse_url, "incremental_merge")
    sync(pg_source_url, duckdb_warehouse_url, "incremental_merge")

    log = warehouse_rows(
        duckdb_warehouse_url,
        "SELECT stream_id, rows_read, rows_inserted, cursor_after FROM _dw.sync_log ORDER BY finished_at",
    )
    assert log == [("src.orders", 1, 1, T0.isoformat()), ("src.orders", 1, 0, T0.isoformat())]


def test_timestamptz_cursor_round_trips_through_state(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric(12,2) NOT NULL,"
        " updated_at timestamptz NOT NULL)",
        "INSERT INTO orders VALUES (1, 'a', 1, '2026-03-01 12:00:00.000001+02')",
    )
    first = sync(pg_source_url, duckdb_warehouse_url, "incremental_merge")
    second = sync(pg_source_url, duckdb_warehouse_url, "incremental_merge")

    expected = datetime(2026, 3, 1, 10, 0, 0, 1, tzinfo=UTC)
    assert first.cursor_after == expected and second.cursor_before == expected
    assert second.rows_unchanged == 1
