"""BigQuery as a source, against the local emulator: the GCP Cloud Billing export declared as
shipped (docs/examples/gcp) streams its documented schema into DuckDB, nested records and
repeated fields as JSON, incrementally on export_time; cloud_cost_daily sums it beside AWS.

Where the emulator is not BigQuery, the test says so: `_PARTITIONTIME` is the instant a row was
inserted there (BigQuery: the start of its day), and a query's result cannot be read over the
Storage Read API there (so queries are read by REST pages, as the product does anyway)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

import dw_pipelines
from dw_pipelines.components import StreamCatalog
from dw_pipelines.devservices.bigquery_emulator import BigQueryEmulator
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.engine import sync_stream
from dw_pipelines.sync.errors import BadUrl, SourceObjectMissing, SourceUnreachable
from dw_pipelines.sync.sources.base import ReadRequest
from dw_pipelines.sync.sources.bigquery import BigQuerySource
from dw_pipelines.sync.spec import DeclarationError, StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines.transforms.profile import dbt_env
from dw_pipelines_tests.bigquery_fixtures import REQUEST_TIMEOUT_S
from dw_pipelines_tests.billing_export_data import Line, append_lines, create_export
from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.transforms_data import write_raw_tables

ROOT = Path(dw_pipelines.__file__).parents[1]
SHIPPED = ROOT / "docs/examples/gcp/defs.yaml"
DBT_PROJECT = ROOT / "dw_pipelines/defs/transforms/dbt"
ACCOUNT = "010101-ABCDEF-987654"
BILLING = dg.AssetKey(["gcp", "billing_export"])

# Four lines of November, one of October; credits are negative, nested in their line.
FIRST = [
    Line("p-alpha", "Compute Engine", "us-central1", "2026-10-31 22:00", "2026-10-30 06:00", 3.0),
    Line("p-alpha", "Compute Engine", "us-central1", "2026-11-01 10:00", "2026-11-01 06:00", 10.0,
         credits=[("SUSTAINED_USAGE_DISCOUNT", -2.5)], labels={"env": "prod"}),
    Line("p-alpha", "Compute Engine", "us-central1", "2026-11-01 11:00", "2026-11-01 06:00", 5.0),
    Line("p-beta", "BigQuery", None, "2026-11-01 12:00", "2026-11-01 06:00", 1.25,
         credits=[("FREE_TIER", -0.25), ("PROMOTION", -0.5)], usage_amount=0.0),
    Line("p-alpha", "Compute Engine", "us-central1", "2026-11-02 10:00", "2026-11-02 06:00", 7.0),
]  # fmt: skip
# A new export, and a line exported late with an export_time below the first sync's cursor.
SECOND = [
    Line("p-alpha", "Cloud Storage", "europe-west1", "2026-11-02 10:00", "2026-11-02 12:00", 2.0),
    Line("p-alpha", "Compute Engine", "us-central1", "2026-11-02 11:00", "2026-11-02 05:00", 0.5),
]  # fmt: skip


@dataclass
class Billing:
    client: bigquery.Client
    table_id: str  # project.dataset.table
    url: str
    attributes: dict[str, Any]


@pytest.fixture
def billing(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Billing]:
    """The shipped declaration pointed at a project of its own on the emulator, holding an
    empty export table named as the declaration names it."""
    project = f"billing-{uuid.uuid4().hex[:10]}"
    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.endpoint},
    )
    attributes = yaml.safe_load(SHIPPED.read_text())["attributes"]
    table_id = f"{project}.{attributes['streams'][0]['object']}"
    create_export(client, table_id)
    url = (
        f"bigquery://{project}?endpoint={bigquery_emulator.endpoint}"
        f"&storage_endpoint={bigquery_emulator.grpc_endpoint}&timeout={REQUEST_TIMEOUT_S}"
    )
    monkeypatch.setenv("DW_GCP_BILLING_URL", url)
    monkeypatch.delenv("DW_GCP_BILLING_CREDENTIALS_FILE", raising=False)
    yield Billing(client, table_id, url, attributes)
    client.close()


def materialize(billing: Billing, warehouse_url: str) -> dg.ExecuteInProcessResult:
    catalog = StreamCatalog.resolve_from_yaml(yaml.safe_dump(billing.attributes)).build_defs(
        None  # type: ignore[arg-type]  # build_defs ignores its context
    )
    return dg.materialize(
        [catalog.get_assets_def(BILLING)],
        resources={**catalog.resources, "warehouse": WarehouseResource(url=warehouse_url)},
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node("gcp__billing_export")
    return {k: v.value for k, v in event.metadata.items()}


def source_for(billing: Billing, **kwargs: Any) -> BigQuerySource:
    return BigQuerySource(billing.url, name="gcp", **kwargs)


def test_the_shipped_billing_export_lands_every_line_with_records_and_lists_as_json(
    billing: Billing, duckdb_warehouse_url: str
) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)

    result = materialize(billing, duckdb_warehouse_url)

    assert result.success
    meta = metadata(result)
    assert (meta["rows_inserted"], meta["read_api"]) == (5, "storage")
    assert all(e.passed for e in result.get_asset_check_evaluations())
    [(service, project, labels, credits, price, location)] = warehouse_rows(
        duckdb_warehouse_url,
        "SELECT service, project, labels, credits, price, location FROM gcp.billing_export"
        " WHERE cost = 1.25",
    )
    assert json.loads(service) == {"id": "24E6-581D-38E5", "description": "BigQuery"}
    assert json.loads(credits) == [
        {"name": "Free_Tier", "amount": -0.25, "full_name": "Free_Tier", "id": "free_tier",
         "type": "FREE_TIER"},
        {"name": "Promotion", "amount": -0.5, "full_name": "Promotion", "id": "promotion",
         "type": "PROMOTION"},
    ]  # fmt: skip
    assert json.loads(labels) == []
    assert json.loads(project)["labels"] == [{"key": "team", "value": "data"}]
    assert json.loads(project)["ancestors"][0]["display_name"] == "example.com"
    # NUMERIC inside a record keeps its exact digits, as a JSON number.
    assert json.loads(price, parse_float=Decimal)["effective_price"] == Decimal("0.047500000")
    assert json.loads(location)["region"] is None


def test_nested_columns_are_json_and_scalars_keep_their_types_in_the_warehouse(
    billing: Billing, duckdb_warehouse_url: str
) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST[:1])

    materialize(billing, duckdb_warehouse_url)

    types = dict(
        warehouse_rows(
            duckdb_warehouse_url,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'gcp' AND table_name = 'billing_export'",
        )
    )
    assert {
        c: types[c] for c in ("service", "labels", "credits", "project", "price")
    } == dict.fromkeys(("service", "labels", "credits", "project", "price"), "JSON")
    assert (types["export_time"], types["cost"], types["billing_account_id"]) == (
        "TIMESTAMP WITH TIME ZONE", "DOUBLE", "VARCHAR",
    )  # fmt: skip
    # The ingestion-time pseudo-column is left out unless a stream asks for it (below).
    assert "partition_time" not in types


def test_a_second_sync_appends_the_new_export_and_the_late_line_its_lookback_rereads(
    billing: Billing, duckdb_warehouse_url: str
) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)
    first = metadata(materialize(billing, duckdb_warehouse_url))
    append_lines(billing.client, billing.table_id, ACCOUNT, SECOND)

    second = metadata(materialize(billing, duckdb_warehouse_url))

    assert first["cursor_after"] == "2026-11-02T06:00:00+00:00"
    # Read from cursor − 1 day (2026-11-01 06:00): October's line is not read again; the four
    # lines already held are read but not appended twice.
    assert (second["rows_read"], second["rows_inserted"], second["rows_unchanged"]) == (6, 2, 4)
    assert second["cursor_after"] == "2026-11-02T12:00:00+00:00"
    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT count(*), sum(cost) FROM gcp.billing_export"
    ) == [(7, 28.75)]


def test_cloud_cost_daily_sums_gcp_cost_net_of_credits_per_day_and_service_beside_aws(
    billing: Billing, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    write_raw_tables(warehouse)  # the dbt fixture's raw tables, AWS's CUR among them
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST + SECOND)
    assert materialize(billing, str(warehouse)).success

    dbt = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--select", "+cloud_cost_daily",
         "--vars", "{gcp_billing_export: true}", "--project-dir", str(DBT_PROJECT),
         "--profiles-dir", str(DBT_PROJECT), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        env={**os.environ, **dbt_env(str(warehouse))}, capture_output=True, text=True,
    )  # fmt: skip

    assert dbt.returncode == 0, dbt.stdout[-3000:]
    rows = warehouse_rows(
        str(warehouse),
        "SELECT usage_date, account_id, service, region, line_item_count, cost"
        " FROM marts.cloud_cost_daily WHERE provider = 'gcp' ORDER BY usage_date, service",
    )
    assert [(str(d), *rest) for d, *rest in rows] == [
        ("2026-10-31", "p-alpha", "Compute Engine", "us-central1", 1, Decimal("3.000000")),
        ("2026-11-01", "p-beta", "BigQuery", "global", 1, Decimal("0.500000")),
        ("2026-11-01", "p-alpha", "Compute Engine", "us-central1", 2, Decimal("12.500000")),
        ("2026-11-02", "p-alpha", "Cloud Storage", "europe-west1", 1, Decimal("2.000000")),
        ("2026-11-02", "p-alpha", "Compute Engine", "us-central1", 2, Decimal("7.500000")),
    ]
    assert warehouse_rows(
        str(warehouse), "SELECT count(*) FROM marts.cloud_cost_daily WHERE provider = 'aws'"
    ) == [(2,)]


def test_a_query_is_read_by_rest_pages_of_batch_rows(billing: Billing) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)
    daily = (
        "SELECT DATE(usage_start_time) AS usage_date, service.description AS service,"
        f" SUM(cost) AS cost FROM `{billing.table_id}` GROUP BY 1, 2"
    )
    source = source_for(billing, queries={"daily": daily}, batch_rows=2)
    try:
        columns = tuple(source.describe("daily"))
        batches = list(source.read(ReadRequest("daily", columns)))
        assert source.run_metadata()["read_api"] == "rest"
    finally:
        source.close()

    assert [c.type for c in columns] == ["date", "string", "float64"]
    assert [b.num_rows for b in batches] == [2, 2]


def test_a_table_is_read_through_the_storage_read_api_within_the_cursor_range(
    billing: Billing,
) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)
    obj = billing.table_id.split(".", 1)[1]
    source = source_for(billing)
    try:
        columns = tuple(c for c in source.describe(obj) if c.name in ("export_time", "cost"))
        request = ReadRequest(
            obj, columns, "export_time", datetime(2026, 11, 1, 6, tzinfo=UTC),
            datetime(2026, 11, 2, tzinfo=UTC),
        )  # fmt: skip
        costs = sorted(v for b in source.read(request) for v in b.column("cost").to_pylist())
        assert source.run_metadata() == {
            "bigquery_jobs": 0, "bigquery_bytes_processed": 0, "read_api": "storage",
        }  # fmt: skip
    finally:
        source.close()

    assert costs == [1.25, 5.0, 10.0]


def test_without_the_storage_api_a_table_is_read_by_a_query_with_the_same_rows(
    billing: Billing, duckdb_warehouse_url: str
) -> None:
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)
    spec = StreamSpec(
        source="gcp",
        object=billing.table_id.split(".", 1)[1],
        name="billing_export",
        mode="incremental_append",  # type: ignore[arg-type]
        cursor="export_time",
        lookback="1 day",
    )
    source = source_for(billing, storage_api=False)
    warehouse = open_warehouse(duckdb_warehouse_url)
    try:
        result = sync_stream(spec, source, warehouse)
        assert source.run_metadata()["read_api"] == "rest"
    finally:
        source.close()
        warehouse.close()

    assert result.rows_inserted == 5
    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT json_extract_string(credits, '$[0].type') FROM gcp.billing_export WHERE cost = 10",
    ) == [("SUSTAINED_USAGE_DISCOUNT",)]


def test_a_partitiontime_cursor_lands_the_pseudo_column_as_partition_time_read_by_a_query(
    billing: Billing, duckdb_warehouse_url: str
) -> None:
    """Only the first sync: the emulator answers `_PARTITIONTIME` with the query's own time
    (it translates it as CURRENT_TIMESTAMP; BigQuery gives the start of the row's ingestion
    day), so reading on from its cursor cannot be checked here."""
    billing.attributes["streams"][0].update(cursor="_PARTITIONTIME", lookback=None, checks=[])
    append_lines(billing.client, billing.table_id, ACCOUNT, FIRST)

    meta = metadata(materialize(billing, duckdb_warehouse_url))

    # A pseudo-column is not a column a Storage Read session can select: a query reads it.
    assert (meta["rows_inserted"], meta["read_api"]) == (5, "rest")
    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT count(partition_time), typeof(any_value(partition_time)) FROM gcp.billing_export",
    ) == [(5, "TIMESTAMP WITH TIME ZONE")]


def test_a_table_that_does_not_exist_fails_naming_it(billing: Billing) -> None:
    source = source_for(billing)
    try:
        with pytest.raises(SourceObjectMissing, match="billing_export.gcp_billing_export_v1_gone"):
            source.describe("billing_export.gcp_billing_export_v1_gone")
    finally:
        source.close()


def test_a_stream_naming_neither_a_table_nor_a_declared_query_is_refused() -> None:
    catalog = """
    sources:
      gcp: {type: bigquery, url_env: DW_GCP_BILLING_URL, queries: {daily: "SELECT 1 AS x"}}
    streams:
      - {source: gcp, object: billing_export_table}
    """
    with pytest.raises(DeclarationError, match=r"field 'object'.*\(daily\)"):
        StreamCatalog.resolve_from_yaml(catalog)


def test_the_shipped_declaration_is_a_stream_on_export_time_with_its_own_schedule() -> None:
    catalog = StreamCatalog.resolve_from_yaml(
        yaml.safe_dump(yaml.safe_load(SHIPPED.read_text())["attributes"])
    ).build_defs(None)  # type: ignore[arg-type]

    spec = next(iter(catalog.get_assets_def(BILLING).specs))
    assert spec.kinds >= {"bigquery"}
    assert spec.metadata["cursor"] == "export_time"
    assert [s.name for s in catalog.schedules or []] == ["gcp_billing_export_schedule"]


@pytest.mark.parametrize("storage_api", [True, False], ids=["storage_read", "query"])
def test_a_date_partitioned_table_reads_on_from_its_last_partition(
    billing: Billing, duckdb_warehouse_url: str, storage_api: bool
) -> None:
    table_id = billing.table_id.rsplit(".", 1)[0] + ".events_by_day"
    table = bigquery.Table(
        table_id,
        schema=[bigquery.SchemaField("event_date", "DATE", mode="REQUIRED"),
                bigquery.SchemaField("country", "STRING"), bigquery.SchemaField("events", "INT64")],
    )  # fmt: skip
    table.time_partitioning = bigquery.TimePartitioning(field="event_date")
    billing.client.create_table(table)

    def add(*rows: tuple[str, str, int]) -> None:
        found = billing.client.insert_rows_json(
            table_id, [{"event_date": d, "country": c, "events": n} for d, c, n in rows]
        )
        assert not found, found

    spec = StreamSpec(
        source="web",
        object=table_id.split(".", 1)[1],
        mode="incremental_append",  # type: ignore[arg-type]
        cursor="event_date",
    )

    def sync() -> Any:
        source = source_for(billing, storage_api=storage_api)
        warehouse = open_warehouse(duckdb_warehouse_url)
        try:
            return sync_stream(spec, source, warehouse)
        finally:
            source.close()
            warehouse.close()

    add(("2026-11-01", "de", 5), ("2026-11-02", "de", 7))
    first = sync()
    add(("2026-11-02", "fr", 2), ("2026-11-03", "de", 1))  # a late row of the last day, a new day
    second = sync()

    assert (first.rows_read, str(first.cursor_after)) == (2, "2026-11-02")
    # The whole last partition again (and the new one); the row already held is not appended.
    assert (second.rows_read, second.rows_inserted, str(second.cursor_after)) == (
        3, 2, "2026-11-03",
    )  # fmt: skip
    assert warehouse_rows(duckdb_warehouse_url, "SELECT sum(events) FROM web.events_by_day") == [
        (15,)
    ]


def test_a_source_url_naming_a_dataset_fails_naming_the_variable() -> None:
    with pytest.raises(BadUrl, match="environment variable DW_GCP_BILLING_URL is malformed"):
        BigQuerySource("bigquery://my-project/billing_export", url_env="DW_GCP_BILLING_URL")


def test_an_unreadable_key_file_fails_without_showing_its_path(tmp_path: Path) -> None:
    key_file = tmp_path / "sa-key-7f3e.json"
    key_file.write_text('{"type": "service_account", "private_key": "not-a-key"}')

    with pytest.raises(SourceUnreachable) as failure:
        BigQuerySource("bigquery://my-project", name="gcp", credentials_file=str(key_file))

    assert "cannot open the project" in str(failure.value)
    assert "sa-key-7f3e" not in str(failure.value) and "not-a-key" not in str(failure.value)
