"""CDC from PostgreSQL: every insert, update and delete lands, in commit order, exactly once.

Each test runs against the machine's real PostgreSQL (wal_level=logical, set by .ci/run) as the
source, once with the DuckDB warehouse and once with the PostgreSQL warehouse.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dw_pipelines.sync.cdc.pgoutput import parse_lsn
from dw_pipelines.sync.errors import ReplicationNotReady, SyncError
from dw_pipelines_tests.conftest import query, run_cdc, run_sql, warehouse_rows

pytestmark = pytest.mark.usefixtures("logical_wal")

ITEMS = {"object": "public.items"}


def make_items(source_url: str, rows: int = 20) -> None:
    run_sql(
        source_url,
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12,2), body text)",
        f"INSERT INTO items SELECT g, 'item ' || g, g * 1.25, 'b' || g FROM generate_series(1, {rows}) g",
    )


def source_items(source_url: str) -> list[tuple]:
    return query(source_url, "SELECT id, name, price, md5(body) FROM items ORDER BY id")


def warehouse_items(warehouse_url: str, where: str = "") -> list[tuple]:
    return warehouse_rows(
        warehouse_url, f"SELECT id, name, price, md5(body) FROM src.items {where} ORDER BY id"
    )


def test_first_run_copies_the_table_and_creates_the_slot(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url)
    result = run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_items(warehouse_url) == source_items(pg_source_url)
    assert result.snapshots == ["src.items"]
    assert query(
        pg_source_url,
        "SELECT slot_name, plugin FROM pg_replication_slots WHERE database = current_database()",
    ) == [("dw_src", "pgoutput")]


def test_inserts_updates_and_deletes_are_applied(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "INSERT INTO items VALUES (100, 'new', 9.99, 'x')",
        "UPDATE items SET price = price + 1 WHERE id <= 5",
        "DELETE FROM items WHERE id BETWEEN 6 AND 8",
        "UPDATE items SET name = 'renamed' WHERE id = 100",
    )
    result = run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_items(warehouse_url) == source_items(pg_source_url)
    stream = result.streams["src.items"]
    assert (stream.rows_inserted, stream.rows_updated, stream.rows_deleted) == (1, 5, 3)
    assert result.transactions == 4
    assert stream.row_count == 18


def test_rolled_back_transactions_never_arrive(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "BEGIN",
        "INSERT INTO items VALUES (500, 'ghost', 1, 'g')",
        "DELETE FROM items WHERE id = 1",
        "ROLLBACK",
    )
    result = run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_items(warehouse_url) == source_items(pg_source_url)
    assert result.transactions == 0


def test_unchanged_toasted_values_are_kept_not_nulled(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=3)
    # Incompressible text well past the 2 kB TOAST threshold: stored out of line.
    run_sql(
        pg_source_url,
        "UPDATE items SET body = (SELECT string_agg(md5(g::text || id), '') FROM generate_series(1, 400) g)",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "UPDATE items SET price = 42 WHERE id = 1",  # body is sent as 'unchanged'
        "UPDATE items SET id = 10 WHERE id = 2",  # the key moves; body still unchanged
        "BEGIN",
        "INSERT INTO items VALUES (20, 'fresh', 1, repeat(md5('z'), 200))",
        "UPDATE items SET price = 2 WHERE id = 20",  # unchanged within the same batch
        "COMMIT",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    rows = warehouse_items(warehouse_url)
    assert rows == source_items(pg_source_url)
    assert all(row[3] is not None for row in rows)


def test_a_primary_key_update_moves_the_row(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=5)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(pg_source_url, "UPDATE items SET id = id + 1000 WHERE id IN (1, 2)")
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert [r[0] for r in warehouse_items(warehouse_url)] == [3, 4, 5, 1001, 1002]
    assert warehouse_items(warehouse_url) == source_items(pg_source_url)


def test_truncate_empties_the_table_then_later_rows_land(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "INSERT INTO items VALUES (900, 'before truncate', 1, 'a')",
        "TRUNCATE items",
        "INSERT INTO items VALUES (1, 'after truncate', 2, 'b')",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_items(warehouse_url) == [(1, "after truncate", Decimal("2.00"), _md5("b"))]


def test_soft_deletes_keep_the_row_with_deleted_at(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=4)
    stream = {**ITEMS, "deletes": "soft"}
    run_cdc(pg_source_url, warehouse_url, stream)
    run_sql(
        pg_source_url, "DELETE FROM items WHERE id = 2", "UPDATE items SET name = 'x' WHERE id = 3"
    )
    result = run_cdc(pg_source_url, warehouse_url, stream)

    live = warehouse_items(warehouse_url, "WHERE _dw_deleted_at IS NULL")
    assert live == source_items(pg_source_url)
    deleted = warehouse_rows(
        warehouse_url, "SELECT id, name FROM src.items WHERE _dw_deleted_at IS NOT NULL"
    )
    assert deleted == [(2, "item 2")]
    assert result.streams["src.items"].rows_deleted == 1


def test_every_row_carries_its_commit_lsn_and_sync_time(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=2)
    first = run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(pg_source_url, "UPDATE items SET name = 'changed' WHERE id = 2")
    second = run_cdc(pg_source_url, warehouse_url, ITEMS)

    rows = dict(warehouse_rows(warehouse_url, "SELECT id, _dw_lsn FROM src.items"))
    snapshot_lsn = rows[1]
    assert first.lsn_before <= snapshot_lsn < rows[2] <= second.lsn_after
    assert parse_lsn(second.streams["src.items"].cursor_after) == second.lsn_after
    assert all(
        r[0] is not None
        for r in warehouse_rows(warehouse_url, "SELECT _dw_synced_at FROM src.items")
    )


def test_several_tables_share_one_slot_and_one_transaction_applies_to_both(
    pg_source_url, warehouse_url
) -> None:
    make_items(pg_source_url, rows=3)
    run_sql(pg_source_url, "CREATE TABLE notes (id int PRIMARY KEY, text text)")
    streams = [ITEMS, {"object": "public.notes"}]
    run_cdc(pg_source_url, warehouse_url, *streams)
    run_sql(
        pg_source_url,
        "BEGIN",
        "INSERT INTO notes VALUES (1, 'item 1 sold out')",
        "DELETE FROM items WHERE id = 1",
        "COMMIT",
    )
    result = run_cdc(pg_source_url, warehouse_url, *streams)

    assert result.transactions == 1
    assert warehouse_rows(warehouse_url, "SELECT id, text FROM src.notes") == [
        (1, "item 1 sold out")
    ]
    assert warehouse_items(warehouse_url) == source_items(pg_source_url)
    assert (
        len(
            query(
                pg_source_url,
                "SELECT 1 FROM pg_replication_slots WHERE database = current_database()",
            )
        )
        == 1
    )


def test_a_table_added_to_the_catalog_is_copied_then_followed(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=3)
    run_sql(pg_source_url, "CREATE TABLE notes (id int PRIMARY KEY, text text)")
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(pg_source_url, "INSERT INTO notes VALUES (1, 'before it was captured')")
    run_cdc(pg_source_url, warehouse_url, ITEMS, {"object": "public.notes"})
    run_sql(
        pg_source_url,
        "INSERT INTO notes VALUES (2, 'after')",
        "UPDATE notes SET text = 'x' WHERE id = 1",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS, {"object": "public.notes"})

    assert warehouse_rows(warehouse_url, "SELECT id, text FROM src.notes ORDER BY id") == [
        (1, "x"),
        (2, "after"),
    ]


def test_a_table_removed_from_the_catalog_leaves_the_publication(
    pg_source_url, warehouse_url
) -> None:
    make_items(pg_source_url, rows=3)
    run_sql(pg_source_url, "CREATE TABLE notes (id int PRIMARY KEY, text text)")
    run_cdc(pg_source_url, warehouse_url, ITEMS, {"object": "public.notes"})
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    published = query(
        pg_source_url, "SELECT tablename FROM pg_publication_tables WHERE pubname = 'dw_src'"
    )
    assert published == [("items",)]


def test_replica_identity_full_with_a_declared_key(pg_source_url, warehouse_url) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE ledger (account text NOT NULL, seq int NOT NULL, amount numeric(10,2))",
        "ALTER TABLE ledger REPLICA IDENTITY FULL",
        "INSERT INTO ledger VALUES ('a', 1, 10), ('a', 2, 20), ('b', 1, 5)",
    )
    stream = {"object": "ledger", "primary_key": ["account", "seq"]}
    run_cdc(pg_source_url, warehouse_url, stream)
    run_sql(
        pg_source_url,
        "UPDATE ledger SET amount = 11 WHERE account = 'a' AND seq = 1",
        "DELETE FROM ledger WHERE account = 'b'",
        "UPDATE ledger SET seq = 3 WHERE account = 'a' AND seq = 2",
    )
    run_cdc(pg_source_url, warehouse_url, stream)

    sql = "SELECT account, seq, amount FROM {} ORDER BY account, seq"
    assert warehouse_rows(warehouse_url, sql.format("src.ledger")) == query(
        pg_source_url, sql.format("ledger")
    )


def test_a_table_without_key_is_refused_and_the_publication_left_alone(
    pg_source_url, warehouse_url
) -> None:
    run_sql(pg_source_url, "CREATE TABLE logs (line text)", "INSERT INTO logs VALUES ('x')")
    with pytest.raises(
        ReplicationNotReady,
        match=r"'logs' has no primary key or replica identity.*REPLICA IDENTITY FULL",
    ):
        run_cdc(pg_source_url, warehouse_url, {"object": "logs", "primary_key": ["line"]})

    assert query(pg_source_url, "SELECT count(*) FROM pg_publication_tables") == [(0,)]
    run_sql(pg_source_url, "UPDATE logs SET line = 'still writable'")


def test_a_column_added_in_the_source_is_added_in_the_warehouse(
    pg_source_url, warehouse_url
) -> None:
    make_items(pg_source_url, rows=2)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "ALTER TABLE items ADD COLUMN stock int",
        "INSERT INTO items VALUES (3, 'three', 3, 'c', 7)",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_rows(warehouse_url, "SELECT id, stock FROM src.items ORDER BY id") == [
        (1, None),
        (2, None),
        (3, 7),
    ]


def test_types_arrive_exactly_as_a_snapshot_reads_them(pg_source_url, warehouse_url) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE typed (id int PRIMARY KEY, ok boolean, n numeric(38,10), f float8,"
        " ts timestamp, tstz timestamptz, d date, t time, b bytea, j jsonb, u uuid, arr int[],"
        " tags text[])",
    )
    values = (
        "(1, true, 12345678901234567890.0123456789, 0.1, '2026-03-01 10:00:00.123456',"
        " '2026-03-01 10:00:00.5+02', '2026-03-01', '23:59:59.999999', '\\x00ff10', '{\"a\": [1, 2.5]}',"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{\"x y\",\"q\\\"\"}')"
    )
    columns = "id, ok, n, f, ts, tstz, d, t, b, j, u, arr, tags"
    run_sql(pg_source_url, f"INSERT INTO typed VALUES {values}")
    run_cdc(pg_source_url, warehouse_url, {"object": "typed"})
    snapshot = warehouse_rows(warehouse_url, f"SELECT {columns} FROM src.typed")
    run_sql(pg_source_url, "DELETE FROM typed", f"INSERT INTO typed VALUES {values}")
    run_cdc(pg_source_url, warehouse_url, {"object": "typed"})

    streamed = warehouse_rows(warehouse_url, f"SELECT {columns} FROM src.typed")
    assert streamed == snapshot
    assert streamed[0][2] == Decimal("12345678901234567890.0123456789")
    assert streamed[0][3] == 0.1


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def test_a_run_with_nothing_new_reports_every_stream_unchanged(
    pg_source_url, warehouse_url
) -> None:
    make_items(pg_source_url, rows=3)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    result = run_cdc(pg_source_url, warehouse_url, ITEMS)

    stream = result.streams["src.items"]
    assert (stream.rows_inserted, stream.rows_updated, stream.rows_deleted) == (0, 0, 0)
    assert stream.row_count == 3
    assert result.lsn_after >= result.lsn_before


def test_rows_are_matched_on_the_replica_identity_index(pg_source_url, warehouse_url) -> None:
    # Under REPLICA IDENTITY USING INDEX a DELETE carries only the index's columns.
    run_sql(
        pg_source_url,
        "CREATE TABLE skus (id int PRIMARY KEY, code text NOT NULL, qty int)",
        "CREATE UNIQUE INDEX skus_code ON skus (code)",
        "ALTER TABLE skus REPLICA IDENTITY USING INDEX skus_code",
        "INSERT INTO skus SELECT g, 'c' || g, g FROM generate_series(1, 5) g",
    )
    run_cdc(pg_source_url, warehouse_url, {"object": "skus"})
    run_sql(
        pg_source_url,
        "DELETE FROM skus WHERE code = 'c2'",
        "UPDATE skus SET code = 'c9', qty = 90 WHERE id = 3",
        "UPDATE skus SET qty = 0 WHERE id = 4",
    )
    run_cdc(pg_source_url, warehouse_url, {"object": "skus"})

    sql = "SELECT id, code, qty FROM {} ORDER BY id"
    assert warehouse_rows(warehouse_url, sql.format("src.skus")) == query(
        pg_source_url, sql.format("skus")
    )


def test_a_key_other_than_the_replica_identity_is_refused(pg_source_url, warehouse_url) -> None:
    run_sql(pg_source_url, "CREATE TABLE skus (id int PRIMARY KEY, code text NOT NULL UNIQUE)")
    with pytest.raises(
        SyncError, match=r"primary_key \['code'\] differs from the replica identity"
    ):
        run_cdc(pg_source_url, warehouse_url, {"object": "skus", "primary_key": ["code"]})


def test_a_deferrable_primary_key_is_refused(pg_source_url, warehouse_url) -> None:
    run_sql(pg_source_url, "CREATE TABLE swaps (id int PRIMARY KEY DEFERRABLE, v text)")
    with pytest.raises(ReplicationNotReady, match=r"DEFERRABLE primary key does not count"):
        run_cdc(pg_source_url, warehouse_url, {"object": "swaps"})


def test_a_partitioned_table_is_followed_through_its_partitions(
    pg_source_url, warehouse_url
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE sales (id int, region text, amount int, PRIMARY KEY (id, region))"
        " PARTITION BY LIST (region)",
        "CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu')",
        "CREATE TABLE sales_us PARTITION OF sales FOR VALUES IN ('us')",
        "INSERT INTO sales VALUES (1, 'eu', 10), (2, 'us', 20)",
    )
    run_cdc(pg_source_url, warehouse_url, {"object": "sales"})
    run_sql(
        pg_source_url,
        "INSERT INTO sales VALUES (3, 'us', 30)",
        "UPDATE sales SET amount = 11 WHERE id = 1",
        "UPDATE sales SET region = 'eu' WHERE id = 2",  # moves between partitions
    )
    result = run_cdc(pg_source_url, warehouse_url, {"object": "sales"})

    sql = "SELECT id, region, amount FROM {} ORDER BY id"
    assert warehouse_rows(warehouse_url, sql.format("src.sales")) == query(
        pg_source_url, sql.format("sales")
    )
    assert result.snapshots == []


def test_changes_made_while_a_table_was_renamed_still_apply(pg_source_url, warehouse_url) -> None:
    make_items(pg_source_url, rows=3)
    run_cdc(pg_source_url, warehouse_url, ITEMS)
    run_sql(
        pg_source_url,
        "ALTER TABLE items RENAME TO items_old",
        "INSERT INTO items_old VALUES (4, 'while renamed', 4, 'd')",
        "ALTER TABLE items_old RENAME TO items",
    )
    run_cdc(pg_source_url, warehouse_url, ITEMS)

    assert warehouse_items(warehouse_url) == source_items(pg_source_url)


def test_a_column_type_widened_under_evolve_keeps_every_value_exact(
    pg_source_url, warehouse_url
) -> None:
    make_items(pg_source_url, rows=2)
    stream = {**ITEMS, "schema_policy": "evolve"}
    run_cdc(pg_source_url, warehouse_url, stream)
    run_sql(
        pg_source_url,
        "UPDATE items SET price = 7.5 WHERE id = 1",
        "ALTER TABLE items ALTER COLUMN price TYPE numeric(14,4)",
        "UPDATE items SET price = 2.1234 WHERE id = 2",
    )
    run_cdc(pg_source_url, warehouse_url, stream)

    assert warehouse_rows(warehouse_url, "SELECT id, price FROM src.items ORDER BY id") == [
        (1, Decimal("7.5000")),
        (2, Decimal("2.1234")),
    ]


def run_cdc_logged(source_url: str, warehouse_url: str, stream: dict[str, object]) -> list[str]:
    """One CDC run of `src` like `run_cdc`, returning what it logged."""
    from dw_pipelines.sync.cdc.runner import sync_postgres_cdc
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    said: list[str] = []
    source, warehouse = SqlSource(source_url, name="src"), open_warehouse(warehouse_url)
    try:
        spec = StreamSpec(source="src", mode="cdc", **stream)  # type: ignore[arg-type]
        sync_postgres_cdc("src", [spec], source, warehouse, log=said.append)
    finally:
        warehouse.close()
        source.close()
    return said


EXTREMES = (
    "(1, '10000-01-01 00:00:00.5', '12000-06-30 23:00:00+00', '10000-01-01',"
    " '0044-03-15 12:00:00 BC', '0044-03-15 BC', '24:00:00')"
)


def test_years_beyond_9999_or_before_christ_and_24h_land_exactly_in_snapshot_and_stream(
    pg_source_url, warehouse_url
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE extremes (id int PRIMARY KEY, ts timestamp, tstz timestamptz, d date,"
        " bc timestamp, bcd date, t time)",
        f"INSERT INTO extremes VALUES {EXTREMES}",
    )
    texts = "ts::text, tstz::text, d::text, bc::text, bcd::text, t::text"
    if warehouse_url.startswith("postgresql"):
        expected = [("10000-01-01 00:00:00.5", "12000-06-30 23:00:00+00", "10000-01-01",
                     "0044-03-15 12:00:00 BC", "0044-03-15 BC", "24:00:00")]  # fmt: skip
    else:
        expected = [("10000-01-01 00:00:00.5", "12000-06-30 23:00:00+00", "10000-01-01",
                     "0044-03-15 (BC) 12:00:00", "0044-03-15 (BC)", "24:00:00")]  # fmt: skip
    run_cdc(pg_source_url, warehouse_url, {"object": "extremes"})
    snapshot = warehouse_rows(warehouse_url, f"SELECT {texts} FROM src.extremes")
    run_sql(pg_source_url, "DELETE FROM extremes", f"INSERT INTO extremes VALUES {EXTREMES}")
    run_cdc(pg_source_url, warehouse_url, {"object": "extremes"})

    assert snapshot == expected
    assert warehouse_rows(warehouse_url, f"SELECT {texts} FROM src.extremes") == expected


INFINITE = "(1, 'infinity', '-infinity', 'infinity', 'NaN', 'Infinity', 2.5)"


def test_infinite_dates_and_nan_numerics_land_as_null_with_a_counted_warning(
    pg_source_url, warehouse_url
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE odd (id int PRIMARY KEY, ts timestamp, tstz timestamptz, d date,"
        " n numeric(12,2), m numeric, ok numeric(12,2))",
        f"INSERT INTO odd VALUES {INFINITE}",
    )
    columns = "id, ts, tstz, d, n, m, ok"
    snapshot_log = run_cdc_logged(pg_source_url, warehouse_url, {"object": "odd"})
    snapshot = warehouse_rows(warehouse_url, f"SELECT {columns} FROM src.odd")
    run_sql(pg_source_url, "DELETE FROM odd", f"INSERT INTO odd VALUES {INFINITE}")
    stream_log = run_cdc_logged(pg_source_url, warehouse_url, {"object": "odd"})

    expected = [(1, None, None, None, None, None, Decimal("2.50"))]
    assert snapshot == expected
    assert warehouse_rows(warehouse_url, f"SELECT {columns} FROM src.odd") == expected
    assert (
        "table 'odd': column 'tstz': 1 value(s) that timestamptz cannot hold stored as NULL"
        " (1 × -infinity)"
    ) in snapshot_log
    assert (
        "src.odd: column 'n': 1 value(s) that decimal(12,2) cannot hold stored as NULL (1 × NaN)"
    ) in stream_log
    warned = [m for m in stream_log if "cannot hold" in m]
    assert [m.split("'")[1] for m in warned] == ["ts", "tstz", "d", "n", "m"]


def test_time_zone_dependent_text_is_the_same_from_snapshot_and_stream(
    pg_source_url, warehouse_url
) -> None:
    # The database's own default differs from the walsender's UTC: a snapshot read in it
    # would render these differently from the change stream.
    database = pg_source_url.rsplit("/", 1)[1]
    run_sql(
        pg_source_url,
        f"ALTER DATABASE \"{database}\" SET TimeZone = 'America/New_York'",
        f"ALTER DATABASE \"{database}\" SET IntervalStyle = 'iso_8601'",
        "CREATE TABLE zoned (id int PRIMARY KEY, r tstzrange, a timestamptz[], i interval)",
    )
    values = (
        "(1, '[2026-03-01 10:00:00+02, 2026-03-02 00:00:00+00)',"
        " '{\"2026-03-01 10:00:00+02\"}', '1 day 02:00:00')"
    )
    run_sql(pg_source_url, f"INSERT INTO zoned VALUES {values}")
    run_cdc(pg_source_url, warehouse_url, {"object": "zoned"})
    snapshot = warehouse_rows(warehouse_url, "SELECT r, CAST(a AS VARCHAR), i FROM src.zoned")
    run_sql(pg_source_url, "DELETE FROM zoned", f"INSERT INTO zoned VALUES {values}")
    run_cdc(pg_source_url, warehouse_url, {"object": "zoned"})

    assert snapshot == [
        (
            '["2026-03-01 08:00:00+00","2026-03-02 00:00:00+00")',
            '["2026-03-01T08:00:00+00:00"]',
            "1 day 02:00:00",
        )
    ]
    assert (
        warehouse_rows(warehouse_url, "SELECT r, CAST(a AS VARCHAR), i FROM src.zoned") == snapshot
    )
