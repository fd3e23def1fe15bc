"""BigQuery tables laid out from the stream's YAML (time partitioning, clustering), against the
local BigQuery emulator, with PostgreSQL as the source. The layout is read back from the table's
own metadata with the client."""

from __future__ import annotations

from datetime import datetime

import pytest

from dw_pipelines.sync.spec import DeclarationError, TableLayout
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines.sync.warehouses.bigquery import BigQueryWarehouse
from dw_pipelines_tests.conftest import run_sql, run_sync

T0 = datetime(2026, 3, 1, 12, 0, 0)


def create_orders(url: str) -> None:
    run_sql(
        url,
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
        " region text, created_at timestamp NOT NULL, created_on date NOT NULL,"
        " amount double precision)",
        f"INSERT INTO orders VALUES (1, 7, 'eu', '{T0}', '2026-03-01', 1.5),"
        f" (2, 8, 'us', '{T0}', '2026-03-02', 2.5)",
    )


def table_metadata(url: str):  # type: ignore[no-untyped-def]
    warehouse = open_warehouse(url)
    assert isinstance(warehouse, BigQueryWarehouse)
    try:
        return warehouse.client.get_table(warehouse._ref(warehouse.table("src", "orders")))
    finally:
        warehouse.close()


def test_an_incremental_stream_table_is_partitioned_and_clustered_as_declared(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url)
    layout = TableLayout(partition_by="created_at", granularity="day", cluster_by=("customer_id",))

    result = run_sync(
        pg_source_url, bigquery_warehouse_url, object="orders", mode="incremental_merge",
        primary_key=["id"], cursor="created_at", table_layout=layout,
    )  # fmt: skip

    table = table_metadata(bigquery_warehouse_url)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "created_at")
    assert table.clustering_fields == ["customer_id"]
    assert result.row_count == 2


def test_a_full_refresh_table_is_created_with_its_layout_and_keeps_it_on_the_next_refresh(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url)
    layout = TableLayout(
        partition_by="created_on", granularity="month", cluster_by=("region", "id")
    )
    run_sync(
        pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh",
        table_layout=layout,
    )  # fmt: skip

    result = run_sync(
        pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh",
        table_layout=layout,
    )  # fmt: skip

    table = table_metadata(bigquery_warehouse_url)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("MONTH", "created_on")
    assert table.clustering_fields == ["region", "id"]
    assert result.row_count == 2


def test_a_stream_without_layout_gets_a_plain_table(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url)

    run_sync(pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh")

    table = table_metadata(bigquery_warehouse_url)
    assert (table.time_partitioning, table.clustering_fields) == (None, None)


@pytest.mark.parametrize(
    ("layout", "field_name", "problem"),
    [
        (TableLayout(partition_by="amount"), "bigquery.partition_by.field", "is FLOAT64"),
        (
            TableLayout(partition_by="created_on", granularity="hour"),
            "bigquery.partition_by.granularity",
            "is a DATE",
        ),
        (TableLayout(cluster_by=("amount",)), "bigquery.cluster_by", "is FLOAT64"),
        (TableLayout(cluster_by=("nope",)), "bigquery.cluster_by", "is not in the table"),
    ],
)
def test_a_layout_bigquery_cannot_build_is_refused_naming_the_stream_and_field(
    pg_source_url: str,
    bigquery_warehouse_url: str,
    layout: TableLayout,
    field_name: str,
    problem: str,
) -> None:
    create_orders(pg_source_url)

    with pytest.raises(DeclarationError, match=f"'src.orders'.*'{field_name}'.*{problem}"):
        run_sync(
            pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh",
            table_layout=layout,
        )  # fmt: skip
