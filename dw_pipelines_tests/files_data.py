"""Test files for the S3 file-stream tests: the same rows written in every supported format."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq


def rows(start: int, count: int) -> list[dict]:
    return [
        {
            "id": i,
            "customer": f"c{i % 97}",
            "amount": Decimal(i) / 100,
            "placed_at": datetime(2026, 11, 1 + i % 28, i % 24, 0, 0, tzinfo=UTC),
        }
        for i in range(start, start + count)
    ]


def csv_bytes(records: list[dict], delimiter: str = ",", header: bool = True) -> bytes:
    lines = [delimiter.join(["id", "customer", "amount", "placed_at"])] if header else []
    for r in records:
        ts = r["placed_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(delimiter.join([str(r["id"]), r["customer"], f"{r['amount']:.2f}", ts]))
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes(records: list[dict]) -> bytes:
    out = []
    for r in records:
        ts = r["placed_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(
            json.dumps(
                {
                    "id": r["id"],
                    "customer": r["customer"],
                    "amount": float(r["amount"]),
                    "placed_at": ts,
                }
            )
        )
    return ("\n".join(out) + "\n").encode()


def parquet_bytes(records: list[dict], row_group_size: int = 10_000) -> bytes:
    table = pa.Table.from_pylist(
        records,
        schema=pa.schema(
            [
                ("id", pa.int64()),
                ("customer", pa.string()),
                ("amount", pa.decimal128(12, 2)),
                ("placed_at", pa.timestamp("us", "UTC")),
            ]
        ),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def zstd_bytes(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()
