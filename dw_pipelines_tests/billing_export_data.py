"""A GCP Cloud Billing detailed usage cost export table, as Google documents its schema
(`gcp_billing_export_resource_v1_<account>`: nested records, repeated labels and credits), made
in the BigQuery emulator and filled with hand-made lines."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def sql(self, account: str) -> str:
        def s(v: str | None) -> str:
            return "NULL" if v is None else "'" + v.replace("'", "\\'") + "'"

        service_id, sku = SERVICES[self.service]
        labels = ", ".join(
            f"STRUCT({s(k)} AS key, {s(v)} AS value)" for k, v in self.labels.items()
        )
        credits = ", ".join(
            f"STRUCT({s(t.title())} AS name, {a} AS amount, {s(t.title())} AS full_name,"
            f" {s(t.lower())} AS id, {s(t)} AS type)"
            for t, a in self.credits
        )
        kv = "ARRAY<STRUCT<key STRING, value STRING>>"
        credit_t = (
            "ARRAY<STRUCT<name STRING, amount FLOAT64, full_name STRING, id STRING, type STRING>>"
        )
        project = (
            "NULL"
            if self.project is None
            else f"STRUCT({s(self.project)} AS id, '1234' AS number, {s(self.project)} AS name,"
            f" CAST([STRUCT('team' AS key, 'data' AS value)] AS {kv}) AS labels,"
            " '/111/1234/' AS ancestry_numbers,"
            " [STRUCT('organizations/111' AS resource_name, 'example.com' AS display_name)]"
            " AS ancestors)"
        )
        return (
            f"({s(account)}, STRUCT({s(service_id)} AS id, {s(self.service)} AS description),"
            f" STRUCT('{service_id}-SKU' AS id, {s(sku)} AS description),"
            f" TIMESTAMP '{self.usage_start}:00+00',"
            f" TIMESTAMP_ADD(TIMESTAMP '{self.usage_start}:00+00', INTERVAL 1 HOUR),"
            f" {project}, CAST([{labels}] AS {kv}),"
            f" CAST([STRUCT('compute.googleapis.com/machine_spec' AS key, 'n1-standard-1' AS value)]"
            f" AS {kv}),"
            f" STRUCT({s(self.region)} AS location, 'US' AS country, {s(self.region)} AS region,"
            " NULL AS zone),"
            f" STRUCT('vm-1' AS name, '//compute.googleapis.com/vm-1' AS global_name),"
            " [STRUCT('env' AS key, 'prod' AS value, FALSE AS inherited, '111' AS namespace)],"
            f" TIMESTAMP '{self.export_time}:00+00', {self.cost}, 'USD', 1.0,"
            f" STRUCT({self.usage_amount} AS amount, 'seconds' AS unit,"
            f" {self.usage_amount / 3600} AS amount_in_pricing_units, 'hour' AS pricing_unit),"
            f" CAST([{credits}] AS {credit_t}),"
            f" STRUCT('{self.usage_start[:7].replace('-', '')}' AS month,"
            " 'Google' AS publisher_type),"
            " 'regular', NULL,"
            " STRUCT(NUMERIC '0.0475' AS effective_price, NUMERIC '0' AS tier_start_amount,"
            " 'hour' AS unit, NUMERIC '1' AS pricing_unit_quantity),"
            f" {self.cost}, NULL, 'Google')"
        )


def create_export(client: bigquery.Client, table_id: str) -> None:
    """The export's table as Cloud Billing makes it: partitioned by day on `_PARTITIONTIME`."""
    dataset = table_id.rsplit(".", 1)[0]
    client.create_dataset(dataset, exists_ok=True)
    table = bigquery.Table(table_id, schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(table)


def append_lines(client: bigquery.Client, table_id: str, account: str, lines: list[Line]) -> None:
    values = ",\n".join(line.sql(account) for line in lines)
    client.query(f"INSERT INTO `{table_id}` VALUES {values}").result()
