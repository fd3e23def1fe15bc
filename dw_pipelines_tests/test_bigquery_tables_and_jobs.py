"""BigQuery tables laid out from the stream's YAML (time partitioning, clustering), the jobs
that build them (ids, errors, what they cost) and the credentials they run with: against the
local BigQuery emulator with PostgreSQL as the source, and, for what the emulator does not do
(it accepts a job id twice), a REST fake that answers as BigQuery documents. The layout is read
back from the table's own metadata with the client."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.errors import WarehouseUnreachable
from dw_pipelines.sync.spec import DeclarationError, StreamSpec, TableLayout
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines.sync.warehouses.bigquery import BigQueryError, BigQueryWarehouse
from dw_pipelines_tests import bigquery_rest_fake as fake
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


def test_another_warehouse_creates_the_same_stream_table_without_the_layout(
    pg_source_url: str, tmp_path: Path
) -> None:
    """One catalog serves DuckDB (the demo) and BigQuery: the `bigquery:` block is BigQuery's."""
    create_orders(pg_source_url)
    layout = TableLayout(partition_by="created_at", cluster_by=("customer_id",))

    result = run_sync(
        pg_source_url, str(tmp_path / "w.duckdb"), object="orders", mode="full_refresh",
        table_layout=layout,
    )  # fmt: skip

    assert result.row_count == 2


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


USAGE_KEYS = [
    "bigquery_bytes_processed",
    "bigquery_bytes_billed",
    "bigquery_slot_ms",
    "bigquery_jobs",
]


def test_a_sync_reports_what_its_bigquery_jobs_cost(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    """Emulator gap: it reports 0 bytes and no slot time for every job, so only the job count
    is known to be above zero here (the fake below checks the figures are BigQuery's)."""
    create_orders(pg_source_url)

    result = run_sync(pg_source_url, bigquery_warehouse_url, object="orders", mode="full_refresh")

    assert sorted(result.warehouse_usage) == sorted(USAGE_KEYS)
    assert result.warehouse_usage["bigquery_jobs"] > 0
    assert all(v >= 0 for v in result.warehouse_usage.values())


def test_a_materialization_on_bigquery_records_bytes_and_slot_time(
    pg_source_url: str, bigquery_warehouse_url: str
) -> None:
    create_orders(pg_source_url)
    spec = StreamSpec(source="src", object="orders")
    resources = {
        source_resource_key("src"): SqlSourceResource(url=pg_source_url, name="src"),
        "warehouse": WarehouseResource(url=bigquery_warehouse_url),
    }

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_stream_asset(spec, source_kind="postgres")], resources=resources,
            instance=instance,
        )  # fmt: skip

    [materialization] = result.asset_materializations_for_node("src__orders")
    assert all(isinstance(materialization.metadata[k].value, int) for k in USAGE_KEYS)
    assert materialization.metadata["bigquery_jobs"].value > 0


def test_a_job_id_bigquery_already_holds_is_waited_for_not_run_again() -> None:
    """The 409 path. The emulator accepts a job id twice and runs it twice (a known gap), so
    this runs against a REST fake answering every jobs.insert with 409 Already Exists, as
    BigQuery does: the warehouse reads the existing job's result and counts its cost once."""
    with fake.fake_bigquery() as server:
        warehouse = BigQueryWarehouse(
            f"bigquery://{fake.PROJECT}/dw?endpoint={server.endpoint}&timeout=10"
        )
        try:
            assert warehouse.rows("SELECT 42 AS n") == [(42,)]
        finally:
            warehouse.close()

    assert server.inserts == 1
    assert warehouse.usage() == {
        "bigquery_bytes_processed": fake.BYTES_PROCESSED,
        "bigquery_bytes_billed": fake.BYTES_BILLED,
        "bigquery_slot_ms": fake.SLOT_MS,
        "bigquery_jobs": 1,
    }


def test_a_refused_query_reports_bigquery_reason_and_location(bigquery_warehouse_url: str) -> None:
    warehouse = open_warehouse(bigquery_warehouse_url)
    try:
        with pytest.raises(BigQueryError, match=r"^BigQuery invalidQuery at query: .*no_such_col"):
            warehouse.rows("SELECT no_such_col FROM UNNEST([1]) AS x")
    finally:
        warehouse.close()


@pytest.fixture
def refusing_token_endpoint() -> Iterator[str]:
    """Google's OAuth token endpoint refusing the key's signed assertion, as it answers a key
    that was deleted or revoked (400 invalid_grant)."""

    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()
    server.server_close()


def test_a_revoked_key_fails_the_materialization_without_its_private_key_anywhere(
    pg_source_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    refusing_token_endpoint: str,
) -> None:
    """A well-formed key Google refuses: the run fails, and neither its log, its events'
    metadata nor the error holds the key's private text or id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps({
            "type": "service_account", "project_id": "dw-prod", "private_key_id": "f00dfeedkey1",
            "private_key": pem, "client_email": "dw@dw-prod.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": refusing_token_endpoint,
        })
    )  # fmt: skip
    monkeypatch.setenv("DW_BIGQUERY_CREDENTIALS_FILE", str(key_file))
    create_orders(pg_source_url)
    resources = {
        source_resource_key("src"): SqlSourceResource(url=pg_source_url, name="src"),
        "warehouse": WarehouseResource(url="bigquery://dw-prod/dw?timeout=10"),
    }

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_stream_asset(StreamSpec(source="src", object="orders"), source_kind="postgres")],
            resources=resources, instance=instance, raise_on_error=False,
        )  # fmt: skip
        events = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]

    assert not result.success
    assert any("invalid_grant" in e for e in events)  # the failure was recorded, and read here
    body = "".join(pem.splitlines()[1:-1])
    for event in events:
        assert body[:64] not in event.replace("\\n", "")
        assert "f00dfeedkey1" not in event


def test_a_bad_key_file_fails_without_its_private_key_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7dwTopSecret"
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps({
            "type": "service_account", "project_id": "p", "private_key_id": "k1",
            "private_key": f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n",
            "client_email": "dw@p.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
    )  # fmt: skip
    monkeypatch.setenv("DW_BIGQUERY_CREDENTIALS_FILE", str(key_file))

    with pytest.raises(WarehouseUnreachable, match="cannot open BigQuery project p") as caught:
        open_warehouse("bigquery://p/dw")

    shown = "".join(traceback.format_exception(caught.value))
    assert secret not in shown
    assert "k1" not in str(caught.value)
