"""Small, realistic AWS Cost and Usage Report deliveries: CUR 2.0 (Parquet) and legacy (CSV.gz).

Same shapes as AWS writes them (key layout, manifest, standard column names), for the demo and
the tests. A "restatement" delivers a period again with different numbers, as AWS does.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ACCOUNTS = ["111122223333", "444455556666"]
SERVICES = [
    ("AmazonEC2", "BoxUsage:m7g.large", "RunInstances", "Hrs", Decimal("0.0816")),
    ("AmazonS3", "TimedStorage-ByteHrs", "StandardStorage", "GB-Mo", Decimal("0.023")),
    ("AmazonRDS", "InstanceUsage:db.r6g.large", "CreateDBInstance", "Hrs", Decimal("0.2250")),
    ("AWSLambda", "Request", "Invoke", "Requests", Decimal("0.0000002")),
    ("AmazonCloudWatch", "MetricMonitorUsage", "MetricStorage", "Metrics", Decimal("0.30")),
]
REGIONS = ["us-east-1", "eu-west-1"]
TEAMS = ["checkout", "search", "data"]


@dataclass(frozen=True)
class LineItem:
    id: str
    account: str
    start: datetime
    service: str
    usage_type: str
    operation: str
    unit: str
    rate: Decimal
    amount: Decimal
    region: str
    team: str
    resource: str

    @property
    def cost(self) -> Decimal:
        return (self.amount * self.rate).quantize(Decimal("0.0000000001"))


def line_items(period: date, days: int, per_day: int, seed: int) -> list[LineItem]:
    rng = random.Random(seed)
    items = []
    for day in range(days):
        for n in range(per_day):
            service, usage, op, unit, rate = SERVICES[n % len(SERVICES)]
            start = datetime(period.year, period.month, 1, tzinfo=UTC) + timedelta(
                days=day, hours=n % 24
            )
            items.append(
                LineItem(
                    id=uuid.UUID(int=rng.getrandbits(128)).hex[:26],
                    account=ACCOUNTS[n % len(ACCOUNTS)],
                    start=start,
                    service=service,
                    usage_type=usage,
                    operation=op,
                    unit=unit,
                    rate=rate,
                    amount=Decimal(rng.randint(1, 5000)) / 10,
                    region=REGIONS[n % len(REGIONS)],
                    team=TEAMS[rng.randrange(len(TEAMS))],
                    resource=f"arn:aws:{service.lower()}:{REGIONS[n % 2]}:resource/{rng.randrange(40)}",
                )
            )
    return items


def _put_parts(
    client: Any,
    bucket: str,
    items: list[LineItem],
    files: int,
    key_of: Callable[[int], str],
    encode: Callable[[list[LineItem]], bytes],
) -> list[str]:
    """Split the line items over `files` objects (numbered from 1); returns their keys."""
    chunk = max(1, -(-len(items) // files))
    keys = []
    for n in range(files):
        key = key_of(n + 1)
        client.put_object(Bucket=bucket, Key=key, Body=encode(items[n * chunk : (n + 1) * chunk]))
        keys.append(key)
    return keys


def _period_bounds(period: date) -> tuple[datetime, datetime]:
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


# -- CUR 2.0 (Data Exports): Parquet in data/BILLING_PERIOD=YYYY-MM/, manifest in metadata/ ----


def put_cur2(client: Any, bucket: str, prefix: str, export: str, period: date,
             items: list[LineItem], files: int = 2) -> list[str]:  # fmt: skip
    """Write (or overwrite) one period of a CUR 2.0 export; returns the data keys."""
    start, end = _period_bounds(period)
    tag = f"BILLING_PERIOD={period:%Y-%m}"
    base = f"{prefix}{export}"
    keys = _put_parts(
        client, bucket, items, files,
        lambda n: f"{base}/data/{tag}/{export}-{n:05}.snappy.parquet",
        lambda part: _cur2_parquet(part, start, end),
    )  # fmt: skip
    manifest = {
        "version": "1.0",
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{ACCOUNTS[0]}:export/{export}",
        "executionId": str(uuid.uuid4()),
        "billingPeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "dataFiles": [f"s3://{bucket}/{k}" for k in keys],
    }
    client.put_object(
        Bucket=bucket,
        Key=f"{base}/metadata/{tag}/{export}-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    return keys


def _cur2_parquet(items: list[LineItem], start: datetime, end: datetime) -> bytes:
    ts = pa.timestamp("ms", "UTC")
    schema = pa.schema([
        ("identity_line_item_id", pa.string()), ("identity_time_interval", pa.string()),
        ("bill_billing_period_start_date", ts), ("bill_billing_period_end_date", ts),
        ("bill_payer_account_id", pa.string()), ("line_item_usage_account_id", pa.string()),
        ("line_item_line_item_type", pa.string()), ("line_item_usage_start_date", ts),
        ("line_item_usage_end_date", ts), ("line_item_product_code", pa.string()),
        ("line_item_usage_type", pa.string()), ("line_item_operation", pa.string()),
        ("line_item_resource_id", pa.string()), ("line_item_usage_amount", pa.float64()),
        ("line_item_unblended_rate", pa.string()), ("line_item_unblended_cost", pa.float64()),
        ("line_item_currency_code", pa.string()), ("pricing_unit", pa.string()),
        ("product", pa.map_(pa.string(), pa.string())),
        ("resource_tags", pa.map_(pa.string(), pa.string())),
    ])  # fmt: skip
    rows = [
        {
            "identity_line_item_id": i.id,
            "identity_time_interval": f"{i.start:%Y-%m-%dT%H:%M:%SZ}/{i.start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
            "bill_billing_period_start_date": start,
            "bill_billing_period_end_date": end,
            "bill_payer_account_id": ACCOUNTS[0],
            "line_item_usage_account_id": i.account,
            "line_item_line_item_type": "Usage",
            "line_item_usage_start_date": i.start,
            "line_item_usage_end_date": i.start + timedelta(hours=1),
            "line_item_product_code": i.service,
            "line_item_usage_type": i.usage_type,
            "line_item_operation": i.operation,
            "line_item_resource_id": i.resource,
            "line_item_usage_amount": float(i.amount),
            "line_item_unblended_rate": str(i.rate),
            "line_item_unblended_cost": float(i.cost),
            "line_item_currency_code": "USD",
            "pricing_unit": i.unit,
            "product": [("region", i.region), ("servicecode", i.service)],
            "resource_tags": [("user_team", i.team)],
        }
        for i in items
    ]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink, compression="snappy")
    return sink.getvalue()


# -- legacy CUR: <report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-N.csv.gz + manifest --------

LEGACY_COLUMNS = [
    ("identity", "LineItemId", "String"), ("identity", "TimeInterval", "Interval"),
    ("bill", "BillingPeriodStartDate", "DateTime"), ("bill", "BillingPeriodEndDate", "DateTime"),
    ("bill", "PayerAccountId", "String"), ("lineItem", "UsageAccountId", "String"),
    ("lineItem", "LineItemType", "String"), ("lineItem", "UsageStartDate", "DateTime"),
    ("lineItem", "UsageEndDate", "DateTime"), ("lineItem", "ProductCode", "String"),
    ("lineItem", "UsageType", "String"), ("lineItem", "Operation", "String"),
    ("lineItem", "ResourceId", "String"), ("lineItem", "UsageAmount", "OptionalBigDecimal"),
    ("lineItem", "UnblendedRate", "OptionalBigDecimal"),
    ("lineItem", "UnblendedCost", "OptionalBigDecimal"), ("lineItem", "CurrencyCode", "String"),
    ("product", "region", "String"), ("pricing", "unit", "String"),
    ("resourceTags", "user:team", "OptionalString"),
]  # fmt: skip


def put_legacy(client: Any, bucket: str, prefix: str, report: str, period: date,
               items: list[LineItem], files: int = 2) -> list[str]:  # fmt: skip
    """Deliver one period of a legacy CUR as a new assembly; returns the data keys."""
    start, end = _period_bounds(period)
    folder = f"{prefix}{report}/{start:%Y%m%d}-{end:%Y%m%d}"
    assembly = str(uuid.uuid4())
    keys = _put_parts(
        client, bucket, items, files,
        lambda n: f"{folder}/{assembly}/{report}-{n}.csv.gz",
        lambda part: _legacy_csv(part, start, end),
    )  # fmt: skip
    manifest = {
        "assemblyId": assembly,
        "account": ACCOUNTS[0],
        "columns": [{"category": c, "name": n, "type": t} for c, n, t in LEGACY_COLUMNS],
        "charset": "UTF-8",
        "compression": "GZIP",
        "contentType": "text/csv",
        "reportId": uuid.uuid4().hex,
        "reportName": report,
        "billingPeriod": {
            "start": f"{start:%Y%m%dT%H%M%S}.000Z",
            "end": f"{end:%Y%m%dT%H%M%S}.000Z",
        },
        "bucket": bucket,
        "reportKeys": keys,
        "additionalArtifactKeys": [],
    }
    body = json.dumps(manifest).encode()
    client.put_object(Bucket=bucket, Key=f"{folder}/{assembly}/{report}-Manifest.json", Body=body)
    client.put_object(Bucket=bucket, Key=f"{folder}/{report}-Manifest.json", Body=body)
    return keys


def _legacy_csv(items: list[LineItem], start: datetime, end: datetime) -> bytes:
    out = io.StringIO()
    out.write(",".join(f"{c}/{n}" for c, n, _ in LEGACY_COLUMNS) + "\n")
    z = "%Y-%m-%dT%H:%M:%SZ"
    for i in items:
        stop = i.start + timedelta(hours=1)
        values = dict(zip([f"{c}/{n}" for c, n, _ in LEGACY_COLUMNS[:20]], [
            i.id, f"{i.start:{z}}/{stop:{z}}", f"{start:{z}}", f"{end:{z}}", ACCOUNTS[0],
            i.account, "Usage", f"{i.start:{z}}", f"{stop:{z}}", i.service, i.usage_type,
            i.operation, i.resource, str(i.amount), str(i.rate), str(i.cost), "USD", i.region,
            i.unit, i.team,
        ], strict=True))  # fmt: skip
        # Columns AWS adds later (new cost allocation tags) are empty on these rows.
        out.write(",".join(values.get(f"{c}/{n}", "") for c, n, _ in LEGACY_COLUMNS) + "\n")
    return gzip.compress(out.getvalue().encode())
