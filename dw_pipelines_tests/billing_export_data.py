"""A GCP Cloud Billing detailed usage cost export table, as Google documents its schema
(`gcp_billing_export_resource_v1_<account>`: nested records, repeated labels and credits), made
in the BigQuery emulator and filled with hand-made lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.cloud import bigquery

S = bigquery.SchemaField


def _kv(name: str) -> bigquery.SchemaField:
    return S(name, "RECORD", mode="REPEATED", fields=[S("key", "STRING"), S("value", "STRING")])


SCHEMA = [
    S("billing_account_id", "STRING"),
    S("service", "RECORD", fields=[S("id", "STRING"), S("description", "STRING")]),
    S("sku", "RECORD", fields=[S("id", "STRING"), S("description", "STRING")]),
    S("usage_start_time", "TIMESTAMP"),
    S("usage_end_time", "TIMESTAMP"),
    S(
        "project",
        "RECORD",
        fields=[
            S("id", "STRING"),
            S("number", "STRING"),
            S("name", "STRING"),
            _kv("labels"),
            S("ancestry_numbers", "STRING"),
            S(
                "ancestors",
                "RECORD",
                mode="REPEATED",
                fields=[S("resource_name", "STRING"), S("display_name", "STRING")],
            ),
        ],
    ),
    _kv("labels"),
    _kv("system_labels"),
    S(
        "location",
        "RECORD",
        fields=[
            S("location", "STRING"),
            S("country", "STRING"),
            S("region", "STRING"),
            S("zone", "STRING"),
        ],
    ),  # fmt: skip
    S("resource", "RECORD", fields=[S("name", "STRING"), S("global_name", "STRING")]),
    S(
        "tags",
        "RECORD",
        mode="REPEATED",
        fields=[
            S("key", "STRING"),
            S("value", "STRING"),
            S("inherited", "BOOLEAN"),
            S("namespace", "STRING"),
        ],
    ),  # fmt: skip
    S("export_time", "TIMESTAMP"),
    S("cost", "FLOAT"),
    S("currency", "STRING"),
    S("currency_conversion_rate", "FLOAT"),
    S(
        "usage",
        "RECORD",
        fields=[
            S("amount", "FLOAT"),
            S("unit", "STRING"),
            S("amount_in_pricing_units", "FLOAT"),
            S("pricing_unit", "STRING"),
        ],
    ),  # fmt: skip
    S(
        "credits",
        "RECORD",
        mode="REPEATED",
        fields=[
            S("name", "STRING"),
            S("amount", "FLOAT"),
            S("full_name", "STRING"),
            S("id", "STRING"),
            S("type", "STRING"),
        ],
    ),  # fmt: skip
    S("invoice", "RECORD", fields=[S("month", "STRING"), S("publisher_type", "STRING")]),
    S("cost_type", "STRING"),
    S(
        "adjustment_info",
        "RECORD",
        fields=[
            S("id", "STRING"),
            S("description", "STRING"),
            S("mode", "STRING"),
            S("type", "STRING"),
        ],
    ),  # fmt: skip
    S(
        "price",
        "RECORD",
        fields=[
            S("effective_price", "NUMERIC"),
            S("tier_start_amount", "NUMERIC"),
            S("unit", "STRING"),
            S("pricing_unit_quantity", "NUMERIC"),
        ],
    ),  # fmt: skip
    S("cost_at_list", "FLOAT"),
    S("transaction_type", "STRING"),
    S("seller_name", "STRING"),
]

SERVICES = {
    "Compute Engine": ("6F81-5844-456A", "N1 Predefined Instance Core running in Americas"),
    "BigQuery": ("24E6-581D-38E5", "Analysis"),
    "Cloud Storage": ("95FF-2EF5-5EA1", "Standard Storage Europe Multi-region"),
}


@dataclass
class Line:
    """One exported cost line; the rest of the documented fields take plausible values."""

    project: str | None
    service: str
    region: str | None
    usage_start: str  # 'YYYY-MM-DD HH:MM' UTC
    export_time: str
    cost: float
    credits: list[tuple[str, float]] = field(default_factory=list)  # (type, amount)
    labels: dict[str, str] = field(default_factory=dict)
    usage_amount: float = 3600.0


def create_export(client: bigquery.Client, table_id: str) -> None:
    """The export's table as Cloud Billing makes it: partitioned by day on `_PARTITIONTIME`."""
    dataset = table_id.rsplit(".", 1)[0]
    client.create_dataset(dataset, exists_ok=True)
    table = bigquery.Table(table_id, schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(table)


def _row(line: Line, account: str) -> dict[str, object]:
    service_id, sku = SERVICES[line.service]
    start = datetime.fromisoformat(line.usage_start + ":00+00:00")
    kv = [{"key": k, "value": v} for k, v in line.labels.items()]
    return {
        "billing_account_id": account,
        "service": {"id": service_id, "description": line.service},
        "sku": {"id": f"{service_id}-SKU", "description": sku},
        "usage_start_time": start.isoformat(),
        "usage_end_time": (start + timedelta(hours=1)).isoformat(),
        "project": None if line.project is None else {
            "id": line.project, "number": "1234", "name": line.project,
            "labels": [{"key": "team", "value": "data"}], "ancestry_numbers": "/111/1234/",
            "ancestors": [{"resource_name": "organizations/111", "display_name": "example.com"}],
        },
        "labels": kv,
        "system_labels": [{"key": "compute.googleapis.com/machine_spec", "value": "n1-standard-1"}],
        "location": {"location": line.region, "country": "US", "region": line.region, "zone": None},
        "resource": {"name": "vm-1", "global_name": "//compute.googleapis.com/vm-1"},
        "tags": [{"key": "env", "value": "prod", "inherited": False, "namespace": "111"}],
        "export_time": line.export_time.replace(" ", "T") + ":00Z",
        "cost": line.cost,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": line.usage_amount, "unit": "seconds",
                  "amount_in_pricing_units": line.usage_amount / 3600, "pricing_unit": "hour"},
        "credits": [
            {"name": t.title(), "amount": a, "full_name": t.title(), "id": t.lower(), "type": t}
            for t, a in line.credits
        ],
        "invoice": {"month": line.usage_start[:7].replace("-", ""), "publisher_type": "Google"},
        "cost_type": "regular",
        "adjustment_info": None,
        "price": {"effective_price": "0.0475", "tier_start_amount": "0", "unit": "hour",
                  "pricing_unit_quantity": "1"},
        "cost_at_list": line.cost,
        "transaction_type": None,
        "seller_name": "Google",
    }  # fmt: skip


def append_lines(client: bigquery.Client, table_id: str, account: str, lines: list[Line]) -> None:
    """Lines appended by the streaming API (the export itself loads them; the rows are alike)."""
    errors = client.insert_rows_json(table_id, [_row(line, account) for line in lines])
    assert not errors, errors
