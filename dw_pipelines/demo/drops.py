"""The demo's file drops: a partner's daily returns file and the company's AWS cost exports.

Each `make demo` run lands one more day of partner returns (CSV.gz) and, as AWS does every
day, restates the current month's Cost and Usage Report (CUR 2.0 Parquet).
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from datetime import date, timedelta
from typing import Any

from dw_pipelines.demo import cur

BUCKET = "demo-drops"
FIRST_DAY = date(2026, 11, 1)
REASONS = ["damaged", "wrong size", "not as described", "changed mind", "late delivery"]


def seed(client: Any) -> dict[str, int]:
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="partner/returns/")
    day_number = listed.get("KeyCount", 0)
    day = FIRST_DAY + timedelta(days=day_number)
    returns = _returns_file(day, seed=day_number)
    client.put_object(
        Bucket=BUCKET, Key=f"partner/returns/{day:%Y-%m-%d}/returns.csv.gz", Body=returns[0]
    )
    month = day.replace(day=1)
    previous = (month - timedelta(days=1)).replace(day=1)
    if day_number == 0:  # last month's final report, delivered once
        cur.put_cur2(client, BUCKET, "aws/cur/", "daily", previous,
                     cur.line_items(previous, days=28, per_day=12, seed=1))  # fmt: skip
    # This month so far, restated in full as AWS does on every delivery.
    items = cur.line_items(month, days=day.day, per_day=12, seed=100 + day.day)
    cur.put_cur2(client, BUCKET, "aws/cur/", "daily", month, items)
    return {"returns_day": day_number + 1, "returns_rows": returns[1], "cur_items": len(items)}


def _returns_file(day: date, seed: int) -> tuple[bytes, int]:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["return_id", "order_id", "reason", "refund_amount", "returned_at"])
    rows = rng.randint(8, 25)
    for n in range(rows):
        writer.writerow([
            f"R{day:%Y%m%d}-{n:03}", rng.randint(1, 2000), rng.choice(REASONS),
            f"{rng.randint(500, 25000) / 100:.2f}",
            f"{day.isoformat()}T{rng.randint(8, 20):02}:{rng.randint(0, 59):02}:00Z",
        ])  # fmt: skip
    return gzip.compress(out.getvalue().encode()), rows
