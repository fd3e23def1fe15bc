"""BigQuery as the warehouse, against the local BigQuery emulator (google-cloud-bigquery as the
client) with PostgreSQL as the source. The emulator is not BigQuery: where it differs, the test
says so (README, "BigQuery as the warehouse")."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.load_unit import LoadUnit
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.state import CursorPosition, StreamState
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines.sync.warehouses.bigquery import BigQueryWarehouse, ConcurrentSync
from dw_pipelines_tests.conftest import run_sql, run_sync

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)


def rows(url: str, sql: str) -> list[tuple]:
    """`{t}` in `sql` is the stream's table `src.orders` in this test's datasets."""
    warehouse = open_warehouse(url)
    try:
        return warehouse.rows(sql.format(t=warehouse.table("src", "orders")))
    finally:
        warehouse.close()


def read_state(url: str) -> StreamState | None:
    warehouse = open_warehouse(url)
    try:
        return warehouse.read_state("src.orders")
    finally:
        warehouse.close()


def create_orders(url: str, values: str) -> None:
    run_sql(
        url,
        "CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20) NOT NULL,"
        " amount numeric(12,2) NOT NULL, updated_at timestamp(6) NOT NULL)",
        f"INSERT INTO orders VALUES {values}",
    )


def sync(source: str, warehouse: str, mode: str, **kwargs: object):  # type: ignore[no-untyped-def]
    keyed = {"primary_key": ["id"], "cursor": "updated_at"} if mode != "full_refresh" else {}
    return run_sync(source, warehouse, object="orders", mode=mode, **keyed, **kwargs)


def test_full_refresh_replaces_the_rows_so_source_deletes_disappear(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url, f"(1, 'paid', 10.50, '{T0}'), (2, 'new', 3.99, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "full_refresh")
    run_sql(pg_source_url, "DELETE FROM orders WHERE id = 1", "UPDATE orders SET status = 'x'")

    result = sync(pg_source_url, bigquery_warehouse_url, "full_refresh")

    assert (result.rows_read, result.row_count) == (1, 1)
    assert rows(bigquery_warehouse_url, "SELECT id, status, amount FROM {t}") == [
        (2, "x", Decimal("3.99"))
    ]


def test_incremental_merge_updates_changed_rows_and_adds_new_ones_once(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}'), (2, 'new', 2, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")
    run_sql(
        pg_source_url,
        "UPDATE orders SET status = 'paid', updated_at = updated_at + interval '1 hour'"
        " WHERE id = 2",
        f"INSERT INTO orders VALUES (3, 'new', 3, '{T0}'::timestamp + interval '1 hour')",
    )

    result = sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")

    assert (result.rows_updated, result.rows_inserted, result.row_count) == (1, 1, 3)
    assert rows(bigquery_warehouse_url, "SELECT id, status FROM {t} ORDER BY id") == [
        (1, "new"),
        (2, "paid"),
        (3, "new"),
    ]
    assert result.cursor_after == datetime(2026, 3, 1, 13, 0, 0, 123456)


def test_incremental_append_adds_only_rows_not_held_yet(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_append")
    run_sql(pg_source_url, f"INSERT INTO orders VALUES (2, 'new', 2, '{T0}')")

    result = sync(pg_source_url, bigquery_warehouse_url, "incremental_append")

    assert (result.rows_inserted, result.row_count) == (1, 2)
    assert rows(bigquery_warehouse_url, "SELECT id FROM {t} ORDER BY id") == [(1,), (2,)]


def test_a_new_source_column_is_added_to_the_table(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge", schema_policy="evolve")
    run_sql(
        pg_source_url,
        "ALTER TABLE orders ADD COLUMN channel text",
        f"INSERT INTO orders VALUES (2, 'new', 2, '{T0}'::timestamp + interval '1 s', 'web')",
    )

    result = sync(
        pg_source_url, bigquery_warehouse_url, "incremental_merge", schema_policy="evolve"
    )

    assert result.columns_added == ["channel"]
    assert rows(bigquery_warehouse_url, "SELECT id, channel FROM {t} ORDER BY id") == [
        (1, None),
        (2, "web"),
    ]


def test_columns_get_bigquery_types_by_kind_and_decimals_keep_their_digits(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """Emulator gaps: it reports NUMERIC(p, s) and BIGNUMERIC(p, s) columns both as NUMERIC
    without precision or scale and stores at most 38 digits (BigQuery: 76), and reports JSON
    columns made by DDL as STRING (their values still behave as JSON). So the DDL's type names
    are checked by the unit tests (`decimal_type`, `type_ddl`), and here the reported types the
    emulator gets right, that a NUMERIC(38, 20) column (a BIGNUMERIC in BigQuery: 20 digits after
    the point) keeps every digit, and that the document comes back as the same JSON."""
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (id bigint PRIMARY KEY, small numeric(12,2), big numeric(38,20),"
        " at timestamptz, day date, ok boolean, raw bytea, doc jsonb)",
        "INSERT INTO orders VALUES (1, 1234567890.12, 123456789012345678.12345678901234567890,"
        " '2026-03-01 12:00:00.123456+00', '2026-03-01', true, '\\x00ff', '{\"a\": [1, 2]}')",
    )
    run_sync(pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh")

    warehouse = open_warehouse(bigquery_warehouse_url)
    assert isinstance(warehouse, BigQueryWarehouse)
    table = warehouse.client.get_table(warehouse._ref(warehouse.table("src", "orders")))
    warehouse.close()
    kinds = {f.name: f.field_type for f in table.schema}
    assert [kinds[c] for c in ("small", "at", "day", "ok", "raw")] == [
        "NUMERIC", "TIMESTAMP", "DATE", "BOOLEAN", "BYTES",
    ]  # fmt: skip
    [row] = rows(
        bigquery_warehouse_url,
        "SELECT small, big, `at`, `day`, ok, raw, TO_JSON_STRING(doc) FROM {t}",
    )
    assert row[:6] == (
        Decimal("1234567890.12"),
        Decimal("123456789012345678.12345678901234567890"),
        datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        date(2026, 3, 1),
        True,
        b"\x00\xff",
    )
    assert json.loads(row[6]) == {"a": [1, 2]}


def test_a_unit_whose_stream_state_moved_on_meanwhile_fails_and_applies_nothing(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """The stream lock is a compare-and-set in the commit script: unit A reads the state, a
    whole sync B commits, then A's commit must fail and leave B's rows and state as they are.
    Sequential on purpose: the interleaving is forced, not hoped for (no threads, no sleeps)."""
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")
    late_warehouse = open_warehouse(bigquery_warehouse_url)
    late = LoadUnit(late_warehouse, "src.orders").__enter__()
    # What A would apply: every row deleted and a state of its own.
    late_warehouse.execute(f"DELETE FROM {late_warehouse.table('src', 'orders')} WHERE TRUE")
    late.write_state(StreamState(CursorPosition("stale")))
    run_sql(pg_source_url, f"INSERT INTO orders VALUES (2, 'new', 2, '{T0}'::timestamp + '1 s')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")
    state_after_b = read_state(bigquery_warehouse_url)

    with pytest.raises(ConcurrentSync, match="another sync of src.orders committed after"):
        late.__exit__(None, None, None)
    late_warehouse.close()

    assert rows(bigquery_warehouse_url, "SELECT id FROM {t} ORDER BY id") == [(1,), (2,)]
    assert read_state(bigquery_warehouse_url) == state_after_b
    assert state_after_b is not None
    assert isinstance(state_after_b.position, CursorPosition)
    assert state_after_b.position.value == datetime(2026, 3, 1, 12, 0, 1, 123456)


def test_a_first_sync_fails_when_another_first_sync_committed_meanwhile(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """The compare-and-set also holds when A saw no state row at all: one written since by B
    makes A's commit fail."""
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}')")
    late_warehouse = open_warehouse(bigquery_warehouse_url)
    with late_warehouse.transaction():
        late_warehouse.ensure_state_table()
    late = LoadUnit(late_warehouse, "src.orders").__enter__()
    late.write_state(StreamState(CursorPosition("stale")))
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")
    state_after_b = read_state(bigquery_warehouse_url)

    with pytest.raises(ConcurrentSync, match="another sync of src.orders committed after"):
        late.__exit__(None, None, None)
    late_warehouse.close()

    assert state_after_b is not None
    assert read_state(bigquery_warehouse_url) == state_after_b
    assert rows(bigquery_warehouse_url, "SELECT id FROM {t}") == [(1,)]


def test_a_failed_sync_leaves_the_table_and_state_as_they_were(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url, f"(1, 'new', 1, '{T0}')")
    sync(pg_source_url, bigquery_warehouse_url, "incremental_merge")
    # The same key twice in one batch is refused after the stage is loaded, before the commit.
    run_sql(
        pg_source_url,
        "ALTER TABLE orders DROP CONSTRAINT orders_pkey",
        f"INSERT INTO orders VALUES (2, 'a', 2, '{T0}'), (2, 'b', 2, '{T0}')",
    )
    warehouse = open_warehouse(bigquery_warehouse_url)
    state_before = warehouse.read_state("src.orders")
    spec = StreamSpec(
        source="src", object="orders", mode="incremental_merge", primary_key=["id"],
        cursor="updated_at",
    )  # type: ignore[arg-type]  # fmt: skip

    with pytest.raises(Exception, match="primary key"):
        sync_stream(spec, SqlSource(pg_source_url, name="src"), warehouse)

    assert warehouse.read_state("src.orders") == state_before
    warehouse.close()
    assert rows(bigquery_warehouse_url, "SELECT id FROM {t}") == [(1,)]


def test_a_keyless_append_rereading_json_values_appends_only_the_new_rows(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """The whole-row comparison SQL and REST streams share with the billing export. BigQuery
    compares JSON by its text (unit/test_bigquery_sql.py); the emulator would accept `=` too."""
    run_sql(
        pg_source_url,
        "CREATE TABLE orders (updated_at timestamp(6) NOT NULL, doc jsonb)",
        f"INSERT INTO orders VALUES ('{T0}', '{{\"a\": [1, 2]}}'), ('{T0}', NULL),"
        f" ('{T0}', 'null')",
    )
    run_sync(pg_source_url, bigquery_warehouse_url, object="orders",
             mode="incremental_append", cursor="updated_at")  # fmt: skip
    # Same cursor value, so read again with the three rows held; only the doc differs.
    run_sql(pg_source_url, f"INSERT INTO orders VALUES ('{T0}', '{{\"a\": [1, 3]}}')")

    result = run_sync(pg_source_url, bigquery_warehouse_url, object="orders",
                      mode="incremental_append", cursor="updated_at")  # fmt: skip

    assert (result.rows_read, result.rows_inserted, result.row_count) == (4, 1, 4)
    assert rows(
        bigquery_warehouse_url,
        "SELECT TO_JSON_STRING(doc) FROM {t} WHERE doc IS NOT NULL ORDER BY 1",
    ) == [("null",), ('{"a":[1,2]}',), ('{"a":[1,3]}',)]
