"""CDC, file streams, kill-and-rerun and schema evolution into BigQuery, on the local emulator.

What the DuckDB and PostgreSQL warehouses prove in test_cdc_*, test_files_* and
test_kill_and_rerun, proved here for BigQuery, whose load unit is buffered (stage tables by load
job, then one script transaction holding rows, state and log line). Small data: the emulator is
shared by the session and every test has its own dataset prefix. CDC runs use their own slot and
publication (`dw_bq_test_<random>`), never the default `dw_src` other sessions share.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from dw_pipelines.sync.state import CdcPosition, FilesPosition
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines.sync.warehouses.bigquery import BigQueryWarehouse
from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    kill_child_at,
    new_postgres_database,
    query,
    run_cdc,
    run_files,
    run_sql,
    run_sync,
)


@pytest.fixture
def cdc_source_url(logical_wal: None) -> Iterator[str]:
    """A fresh PostgreSQL database for one CDC test; dropped with its slot afterwards."""
    name = new_postgres_database("dw_bq_test")
    yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    drop_postgres_database(name)


@pytest.fixture
def slot() -> str:
    """This test's own replication slot and publication name (slot names are server-wide)."""
    return f"dw_bq_test_{uuid.uuid4().hex[:10]}"


def bq_rows(url: str, sql: str, schema: str = "src", name: str = "items") -> list[tuple]:
    """Rows of `sql` on the warehouse; `{t}` is table `schema.name`, `{dw}` the state dataset."""
    warehouse = open_warehouse(url)
    try:
        return warehouse.rows(
            sql.format(t=warehouse.table(schema, name), dw=warehouse.dataset("_dw"))
        )
    finally:
        warehouse.close()


def read_state(url: str, stream_id: str):  # type: ignore[no-untyped-def]
    warehouse = open_warehouse(url)
    try:
        return warehouse.read_state(stream_id)
    finally:
        warehouse.close()


# -- CDC apply ---------------------------------------------------------------------------------

ITEMS = {"object": "public.items"}


def cdc(source_url: str, warehouse_url: str, slot: str, **stream: object):  # type: ignore[no-untyped-def]
    return run_cdc(source_url, warehouse_url, {**ITEMS, **stream}, slot=slot, publication=slot)


def make_items(source_url: str, rows: int = 6) -> None:
    run_sql(
        source_url,
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12,2))",
        f"INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, {rows}) g",
    )


def source_items(source_url: str) -> list[tuple]:
    return query(source_url, "SELECT id, name, price FROM items ORDER BY id")


def warehouse_items(warehouse_url: str) -> list[tuple]:
    return bq_rows(warehouse_url, "SELECT id, name, price FROM {t} ORDER BY id")


def test_cdc_inserts_updates_and_deletes_land_in_bigquery(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(
        cdc_source_url,
        "INSERT INTO items VALUES (100, 'new', 9.99)",
        "UPDATE items SET price = price + 1 WHERE id <= 2",
        "DELETE FROM items WHERE id = 3",
        "UPDATE items SET name = 'renamed' WHERE id = 100",
    )

    result = cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert warehouse_items(bigquery_warehouse_url) == source_items(cdc_source_url)
    stream = result.streams["src.items"]
    assert (stream.rows_inserted, stream.rows_updated, stream.rows_deleted) == (1, 2, 1)
    assert (result.transactions, stream.row_count) == (4, 6)


def test_cdc_reports_what_its_bigquery_jobs_cost_once_for_the_whole_run(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    """Emulator gap: it bills 0 bytes, so the job count is the figure known to be above zero."""
    make_items(cdc_source_url)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(cdc_source_url, "UPDATE items SET price = price + 1 WHERE id = 1")

    result = cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert sorted(result.warehouse_usage) == sorted(
        ["bigquery_bytes_processed", "bigquery_bytes_billed", "bigquery_slot_ms", "bigquery_jobs"]
    )
    assert result.warehouse_usage["bigquery_jobs"] > 0
    # On the stream under the run's name: a source's streams share the run's jobs.
    assert result.streams["src.items"].warehouse_usage == {
        f"cdc_run_{k}": v for k, v in result.warehouse_usage.items()
    }


def test_cdc_a_primary_key_update_moves_the_row_in_bigquery(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url, rows=3)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(cdc_source_url, "UPDATE items SET id = id + 1000 WHERE id = 1")

    cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert [r[0] for r in warehouse_items(bigquery_warehouse_url)] == [2, 3, 1001]
    assert warehouse_items(bigquery_warehouse_url) == source_items(cdc_source_url)


def test_cdc_soft_deletes_keep_the_row_in_bigquery_with_deleted_at(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url, rows=3)
    cdc(cdc_source_url, bigquery_warehouse_url, slot, deletes="soft")
    run_sql(cdc_source_url, "DELETE FROM items WHERE id = 2")

    cdc(cdc_source_url, bigquery_warehouse_url, slot, deletes="soft")

    assert bq_rows(
        bigquery_warehouse_url, "SELECT id, _dw_deleted_at IS NOT NULL FROM {t} ORDER BY id"
    ) == [(1, False), (2, True), (3, False)]


def test_cdc_the_lsn_the_warehouse_holds_is_the_one_its_rows_reach(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    """The position is written by the same commit script as the rows and its log line: after a
    run it is the run's end, and the log line of that commit counts the changes applied."""
    make_items(cdc_source_url, rows=2)
    first = cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(cdc_source_url, "INSERT INTO items VALUES (7, 'x', 1)")

    second = cdc(cdc_source_url, bigquery_warehouse_url, slot)

    state = read_state(bigquery_warehouse_url, "cdc:src")
    assert isinstance(state.position, CdcPosition)
    assert (state.position.lsn, state.position.slot) == (second.lsn_after, slot)
    assert second.lsn_after > first.lsn_after
    assert bq_rows(
        bigquery_warehouse_url,
        "SELECT sum(rows_inserted) FROM `{dw}`.sync_log WHERE mode = 'cdc'",
    ) == [(1,)]


# -- file streams ------------------------------------------------------------------------------


def put(local_s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def events(url: str, columns: str = "id") -> list[tuple]:
    return bq_rows(url, f"SELECT {columns} FROM {{t}} ORDER BY id", "drops", "events")


def loaded_files(url: str) -> list[tuple]:
    return bq_rows(
        url,
        "SELECT object_key, rows_loaded FROM `{dw}`.files WHERE status = 'loaded'"
        " ORDER BY object_key",
    )


def test_file_merge_into_bigquery_keeps_one_row_per_key_the_later_file_winning(
    local_s3, bucket: str, bigquery_warehouse_url: str
) -> None:
    merge = {"prefix": "in/", "mode": "merge", "primary_key": ("id",)}
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,new\n2,new\n")
    run_files(local_s3, bigquery_warehouse_url, bucket, **merge)
    put(local_s3, bucket, "in/2.csv", b"id,status\n2,shipped\n3,new\n")

    second = run_files(local_s3, bigquery_warehouse_url, bucket, **merge)

    assert events(bigquery_warehouse_url, "id, status") == [(1, "new"), (2, "shipped"), (3, "new")]
    assert (second.loaded, second.rows_inserted, second.rows_updated) == (["in/2.csv"], 1, 1)
    assert second.row_count == 3


def test_file_append_into_bigquery_picks_up_a_second_batch_of_files_exactly_once(
    local_s3, bucket: str, bigquery_warehouse_url: str
) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    put(local_s3, bucket, "in/2.parquet", data.parquet_bytes(data.rows(4, 2)))
    run_files(local_s3, bigquery_warehouse_url, bucket, prefix="in/")
    put(local_s3, bucket, "in/3.csv", data.csv_bytes(data.rows(6, 2)))

    second = run_files(local_s3, bigquery_warehouse_url, bucket, prefix="in/")
    third = run_files(local_s3, bigquery_warehouse_url, bucket, prefix="in/")

    assert second.loaded == ["in/3.csv"]
    assert (third.files_loaded, third.rows_read) == (0, 0)
    # The first file is CSV: `amount` is inferred as a double, the Parquet decimals cast to it.
    assert events(bigquery_warehouse_url, "id, customer, amount") == [
        (r["id"], r["customer"], float(r["amount"])) for r in data.rows(1, 7)
    ]
    assert loaded_files(bigquery_warehouse_url) == [
        ("in/1.csv", 3), ("in/2.parquet", 2), ("in/3.csv", 2),
    ]  # fmt: skip
    # The stream's state was committed with the last file's rows.
    state = read_state(bigquery_warehouse_url, "drops.events")
    assert isinstance(state.position, FilesPosition)
    assert state.position.last_object == "in/3.csv"


# -- SIGKILL and rerun -------------------------------------------------------------------------
# A child process runs the real sync and stops for good at an announced phase (see _sync_child);
# the test SIGKILLs it there. "load": stage tables filled by load jobs, commit script not sent
# (BigQuery buffers every DML to it, so this is also "just before the commit"). "committed": the
# script's job finished (rows, state and log line applied in BigQuery), the process killed before
# it acknowledges anything (the CDC slot not yet told, the next file not begun). A kill *during*
# the script's job cannot be staged on the emulator: it runs a query job to the end inside the
# request that submits it. (On BigQuery the job runs on without its client, and the state check
# in each script lets only one of it and the rerun's commit.)

SQL_ROWS = 400


def sync_events(source_url: str, warehouse_url: str, mode: str):  # type: ignore[no-untyped-def]
    """In this process, the same stream `_sync_child` syncs."""
    return run_sync(
        source_url, warehouse_url, object="events", mode=mode, primary_key=["id"],
        cursor="updated_at", lookback="1 minute",
    )  # fmt: skip


def seed_events(source_url: str) -> None:
    run_sql(
        source_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note text,"
        " updated_at timestamptz NOT NULL)",
        "INSERT INTO events SELECT g, g / 100.0, 'note ' || g,"
        " '2026-01-01'::timestamptz + g * interval '1 millisecond'"
        f" FROM generate_series(1, {SQL_ROWS}) g",
    )


def source_events(source_url: str) -> list[tuple]:
    return query(source_url, "SELECT id, amount, note, updated_at FROM events ORDER BY id")


@pytest.mark.parametrize("marker", ["load", "committed"])
def test_an_append_killed_then_rerun_leaves_each_row_version_in_bigquery_once(
    pg_source_url: str, bigquery_warehouse_url: str, marker: str
) -> None:
    """Append, not merge: a version loaded twice would stay twice (a MERGE would hide it)."""
    seed_events(pg_source_url)
    sync_events(pg_source_url, bigquery_warehouse_url, "incremental_append")
    before = source_events(pg_source_url)
    run_sql(
        pg_source_url,
        "UPDATE events SET note = 'changed', updated_at = now() WHERE id % 10 = 0",
        f"INSERT INTO events SELECT g, 7.77, 'new', now() FROM generate_series({SQL_ROWS + 1},"
        f" {SQL_ROWS + 50}) g",
    )
    after = source_events(pg_source_url)

    child = ["dw_pipelines_tests._sync_child", pg_source_url, bigquery_warehouse_url]
    kill_child_at([*child, "incremental_append"], marker, 1, after="batch")
    sync_events(pg_source_url, bigquery_warehouse_url, "incremental_append")

    expected = sorted(set(before) | set(after), key=lambda row: (row[0], row[3]))
    assert (
        bq_rows(
            bigquery_warehouse_url,
            "SELECT id, amount, note, updated_at FROM {t} ORDER BY id, updated_at",
            name="events",
        )
        == expected
    )


def test_a_sync_killed_after_its_commit_left_rows_and_state_together(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """Killed right after the commit script: the rows and the cursor they reach are both there,
    so the rerun inserts nothing (it re-reads only the lookback minute and finds it held)."""
    child = ["dw_pipelines_tests._sync_child", pg_source_url, bigquery_warehouse_url]
    seed_events(pg_source_url)

    kill_child_at([*child, "incremental_merge"], "committed", 1, after="batch")
    state = read_state(bigquery_warehouse_url, "src.events")
    held = bq_rows(bigquery_warehouse_url, "SELECT count(*) FROM {t}", name="events")
    rerun = sync_events(pg_source_url, bigquery_warehouse_url, "incremental_merge")

    assert state is not None
    assert state.position.value == source_events(pg_source_url)[-1][3]
    assert held == [(SQL_ROWS,)]
    assert (rerun.rows_inserted, rerun.row_count) == (0, SQL_ROWS)


FILES = 3


@pytest.mark.parametrize(("marker", "occurrence"), [("load", 1), ("committed", 2)])
def test_a_file_stream_killed_then_rerun_loads_every_files_rows_into_bigquery_once(
    local_s3, bucket: str, bigquery_warehouse_url: str, marker: str, occurrence: int
) -> None:
    for n in range(FILES):
        put(local_s3, bucket, f"in/{n}.csv", data.csv_bytes(data.rows(n * 100, 20)))
    kill_child_at(
        ["dw_pipelines_tests._files_child", local_s3.endpoint_url, local_s3.access_key_id,
         local_s3.secret_access_key, bucket, bigquery_warehouse_url, "merge"],
        marker,
        occurrence,
    )  # fmt: skip
    put(local_s3, bucket, "in/9.csv", data.csv_bytes(data.rows(900, 5)))

    rerun = run_files(
        local_s3, bigquery_warehouse_url, bucket, prefix="in/", mode="merge", primary_key=("id",)
    )

    expected = [i for n in range(FILES) for i in range(n * 100, n * 100 + 20)]
    assert [r[0] for r in events(bigquery_warehouse_url)] == [*expected, *range(900, 905)]
    assert rerun.row_count == FILES * 20 + 5
    assert [n for _, n in loaded_files(bigquery_warehouse_url)] == [20] * FILES + [5]


def churn_items(source_url: str) -> dict[str, int]:
    """Six transactions on distinct keys: each key changed once, so a transaction applied
    twice would show in the counts of the log lines committed with the changes."""
    statements = []
    for t in range(6):
        base = t * 10
        statements += [
            "BEGIN",
            f"UPDATE items SET price = price + 1 WHERE id > {base} AND id <= {base + 4}",
            f"INSERT INTO items VALUES ({1000 + t}, 'new', 1), ({2000 + t}, 'new', 2)",
            f"DELETE FROM items WHERE id = {base + 5}",
            "COMMIT",
        ]
    run_sql(source_url, *statements)
    return {"updated": 6 * 4, "inserted": 6 * 2, "deleted": 6}


@pytest.mark.parametrize(("marker", "occurrence"), [("load", 2), ("committed", 4)])
def test_cdc_killed_then_rerun_applies_each_change_to_bigquery_once(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str, marker: str, occurrence: int
) -> None:
    make_items(cdc_source_url, rows=60)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    expected = churn_items(cdc_source_url)

    kill_child_at(
        ["dw_pipelines_tests._cdc_child", cdc_source_url, bigquery_warehouse_url,
         "--objects", "items", "--slot", slot],
        marker,
        occurrence,
    )  # fmt: skip
    cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert warehouse_items(bigquery_warehouse_url) == source_items(cdc_source_url)
    updated, inserted, deleted = bq_rows(
        bigquery_warehouse_url,
        "SELECT sum(rows_updated), sum(rows_inserted), sum(rows_deleted) FROM `{dw}`.sync_log"
        " WHERE mode = 'cdc'",
    )[0]
    assert {"updated": updated, "inserted": inserted, "deleted": deleted} == expected


# -- schema evolution --------------------------------------------------------------------------


def column_types(url: str, schema: str, name: str) -> dict[str, str]:
    """The table's column types as a query over it reports them. Emulator gap: its tables.get
    and INFORMATION_SCHEMA keep the columns of the CREATE TABLE and miss every later ALTER TABLE
    (BigQuery's reflect them); its queries see the table as altered."""
    warehouse = open_warehouse(url)
    assert isinstance(warehouse, BigQueryWarehouse)
    try:
        sql = f"SELECT * FROM {warehouse.table(schema, name)} LIMIT 0"
        result = warehouse.client.query(sql).result()
    finally:
        warehouse.close()
    return {f.name: f.field_type for f in result.schema}


def test_a_sync_between_runs_adds_a_new_column_and_widens_a_changed_one(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """Added by ALTER TABLE ADD COLUMN (old rows NULL), widened by ALTER COLUMN SET DATA TYPE
    (INT64 to NUMERIC, a widening BigQuery allows in place), the old values kept exactly."""
    run_sql(
        pg_source_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, qty int NOT NULL, updated_at timestamptz)",
        "INSERT INTO events VALUES (1, 5, '2026-01-01 00:00:00+00')",
    )
    stream = {"object": "events", "mode": "incremental_merge", "primary_key": ["id"],
              "cursor": "updated_at", "schema_policy": "evolve"}  # fmt: skip
    run_sync(pg_source_url, bigquery_warehouse_url, **stream)
    run_sql(
        pg_source_url,
        "ALTER TABLE events ADD COLUMN channel text",
        "ALTER TABLE events ALTER COLUMN qty TYPE numeric(14,3)",
        "INSERT INTO events VALUES (2, 12345678.125, '2026-01-02 00:00:00+00', 'web')",
    )

    result = run_sync(pg_source_url, bigquery_warehouse_url, **stream)

    assert (result.columns_added, result.columns_altered) == (["channel"], ["qty"])
    types = column_types(bigquery_warehouse_url, "src", "events")
    assert (types["qty"], types["channel"]) == ("NUMERIC", "STRING")
    assert bq_rows(
        bigquery_warehouse_url, "SELECT id, qty, channel FROM {t} ORDER BY id", name="events"
    ) == [(1, Decimal("5"), None), (2, Decimal("12345678.125"), "web")]


def test_cdc_a_column_added_in_the_source_lands_in_bigquery_with_old_rows_null(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url, rows=2)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(
        cdc_source_url,
        "ALTER TABLE items ADD COLUMN stock int",
        "INSERT INTO items VALUES (3, 'three', 3, 7)",
        "UPDATE items SET name = 'one' WHERE id = 1",
    )

    cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert bq_rows(bigquery_warehouse_url, "SELECT id, name, stock FROM {t} ORDER BY id") == [
        (1, "one", None),
        (2, "item 2", None),
        (3, "three", 7),
    ]


def test_cdc_a_column_widened_in_the_source_keeps_every_value_exact_in_bigquery(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url, rows=2)
    cdc(cdc_source_url, bigquery_warehouse_url, slot, schema_policy="evolve")
    run_sql(
        cdc_source_url,
        "UPDATE items SET price = 7.5 WHERE id = 1",
        "ALTER TABLE items ALTER COLUMN price TYPE numeric(14,4)",
        "UPDATE items SET price = 2.1234 WHERE id = 2",
    )

    cdc(cdc_source_url, bigquery_warehouse_url, slot, schema_policy="evolve")

    assert bq_rows(bigquery_warehouse_url, "SELECT id, price FROM {t} ORDER BY id") == [
        (1, Decimal("7.5")),
        (2, Decimal("2.1234")),
    ]


def test_a_file_with_a_new_column_adds_it_in_bigquery_with_old_rows_null(
    local_s3, bucket: str, bigquery_warehouse_url: str
) -> None:
    evolve = {"prefix": "in/", "mode": "merge", "primary_key": ("id",), "schema_policy": "evolve"}
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,new\n")
    run_files(local_s3, bigquery_warehouse_url, bucket, **evolve)
    put(local_s3, bucket, "in/2.csv", b"id,status,channel\n2,new,web\n")

    run_files(local_s3, bigquery_warehouse_url, bucket, **evolve)

    assert events(bigquery_warehouse_url, "id, status, channel") == [
        (1, "new", None),
        (2, "new", "web"),
    ]
