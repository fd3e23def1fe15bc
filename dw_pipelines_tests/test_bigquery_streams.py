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

import pytest

from dw_pipelines.sync.state import CdcPosition, FilesPosition
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
    query,
    run_cdc,
    run_files,
    run_sql,
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


def test_cdc_a_primary_key_update_moves_the_row_in_bigquery(
    cdc_source_url: str, bigquery_warehouse_url: str, slot: str
) -> None:
    make_items(cdc_source_url, rows=3)
    cdc(cdc_source_url, bigquery_warehouse_url, slot)
    run_sql(cdc_source_url, "UPDATE items SET id = id + 1000 WHERE id = 1")

    cdc(cdc_source_url, bigquery_warehouse_url, slot)

    assert [r[0] for r in warehouse_items(bigquery_warehouse_url)] == [2, 3, 1001]
    assert warehouse_items(bigquery_warehouse_url) == source_items(cdc_source_url)


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
    state = read_state(bigquery_warehouse_url, "drops.events")
    assert isinstance(state.position, FilesPosition)
