"""BigQuery specifics built without a server: the `bigquery:` block of a stream (partitioning,
clustering) from YAML to spec, job ids derived from run, stream and step, and the usage keys a
BigQuery sync adds to its materialization metadata."""

from __future__ import annotations

import re

import pytest

from dw_pipelines.ingest.metadata import result_metadata
from dw_pipelines.kinds.streams import StreamModel
from dw_pipelines.sync.result import SyncResult
from dw_pipelines.sync.spec import DeclarationError, StreamSpec, TableLayout
from dw_pipelines.sync.warehouses.bigquery import job_id

# BigQuery's job id alphabet and length (jobs.insert, JobReference.jobId).
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")


def test_the_yaml_bigquery_block_becomes_the_stream_table_layout() -> None:
    model = StreamModel.model_validate(
        {
            "source": "shop",
            "object": "orders",
            "bigquery": {
                "partition_by": {"field": "created_at", "granularity": "month"},
                "cluster_by": ["customer_id", "status"],
            },
        }
    )

    assert model.to_spec().table_layout == TableLayout(
        partition_by="created_at", granularity="month", cluster_by=("customer_id", "status")
    )


def test_a_file_stream_takes_the_bigquery_block_too() -> None:
    from dw_pipelines.kinds.s3_files import S3FilesKind, S3SourceModel

    model = StreamModel.model_validate(
        {
            "source": "drops",
            "name": "events",
            "files": {"bucket": "b", "prefix": "events/"},
            "bigquery": {"partition_by": {"field": "_dw_source_modified"}},
        }
    )

    spec = S3FilesKind().spec("drops", S3SourceModel(type="s3"), model)

    assert spec.table_layout == TableLayout(partition_by="_dw_source_modified")


def test_a_stream_without_the_block_has_no_layout() -> None:
    model = StreamModel.model_validate({"source": "shop", "object": "orders"})

    assert model.to_spec().table_layout is None


@pytest.mark.parametrize(
    ("layout", "columns", "field_name"),
    [
        (TableLayout(partition_by="at", granularity="week"), None, "partition_by.granularity"),
        (TableLayout(cluster_by=("a", "b", "c", "d", "e")), None, "cluster_by"),
        (TableLayout(cluster_by=("a", "a")), None, "cluster_by"),
        (TableLayout(partition_by="at"), ("id",), "partition_by.field"),
        (TableLayout(cluster_by=("region",)), ("id",), "cluster_by"),
    ],
)
def test_a_layout_bigquery_cannot_have_is_refused_naming_the_field(
    layout: TableLayout, columns: tuple[str, ...] | None, field_name: str
) -> None:
    spec = StreamSpec(source="shop", object="orders", columns=columns, table_layout=layout)

    with pytest.raises(DeclarationError, match=f"'shop.orders'.*'bigquery.{field_name}'"):
        spec.validate()


def test_the_sync_time_column_may_partition_a_stream_that_lists_its_columns() -> None:
    layout = TableLayout(partition_by="_dw_synced_at", granularity="hour")

    StreamSpec(source="shop", object="orders", columns=("id",), table_layout=layout).validate()


def test_a_job_id_names_run_stream_step_and_kind_in_bigquery_alphabet() -> None:
    made = job_id("4f3c9a1e_0a1b2c3d4e5f", "shop.orders (eu)", 7, "load")

    assert made == "dw_4f3c9a1e_0a1b2c3d4e5f_shop_orders__eu__7_load"
    assert JOB_ID.match(made)


def test_the_same_step_of_the_same_run_gets_the_same_job_id_and_the_next_step_another() -> None:
    first = job_id("run_a", "shop.orders", 3, "dml")

    assert job_id("run_a", "shop.orders", 3, "dml") == first
    assert job_id("run_a", "shop.orders", 4, "dml") != first
    assert job_id("run_b", "shop.orders", 3, "dml") != first


def test_a_long_stream_name_is_cut_but_the_step_survives() -> None:
    made = job_id("r" * 2000, "s" * 2000, 12, "commit")

    assert JOB_ID.match(made)
    assert made.endswith("_12_commit")


def test_a_bigquery_sync_records_what_its_jobs_cost_under_stable_keys() -> None:
    result = SyncResult("shop.orders", "full_refresh", "shop.orders")
    result.warehouse_usage = {
        "bigquery_bytes_processed": 10, "bigquery_bytes_billed": 20, "bigquery_slot_ms": 30,
        "bigquery_jobs": 4,
    }  # fmt: skip

    metadata = result_metadata(result)

    assert [metadata[k] for k in ("bigquery_bytes_processed", "bigquery_bytes_billed",
                                  "bigquery_slot_ms", "bigquery_jobs")] == [10, 20, 30, 4]  # fmt: skip


def test_a_sync_on_another_warehouse_records_no_bigquery_key() -> None:
    metadata = result_metadata(SyncResult("shop.orders", "full_refresh", "shop.orders"))

    assert not [k for k in metadata if k.startswith("bigquery_")]
