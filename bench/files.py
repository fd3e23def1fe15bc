"""Benchmark: S3 file streams into DuckDB — a gzip CSV and the same rows as Parquet.

Prints figures; asserts nothing.

    .venv/bin/python bench/files.py                 # 1M rows
    .venv/bin/python bench/files.py --rows 4000000  # RSS should not grow with the file

The files are written locally, uploaded to a local S3-compatible server (SeaweedFS `weed mini`),
and loaded by the real runner (boto3 over HTTP) in a child process each; its time and peak RSS
(os.wait4) are printed next to a same-run reference: DuckDB `read_csv` / `read_parquet` of the
same files from local disk into a table, also in its own process.

Targets (issue 5): Parquet at most 1.5x its reference, CSV at most 2x; peak RSS flat in size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dw_pipelines.devservices import s3_server  # noqa: E402

BUCKET = "bench-files"


def write_files(rows: int, directory: Path) -> tuple[Path, Path]:
    """`rows` order lines as events.csv.gz and events.parquet (row groups of 128k)."""
    csv_path, parquet_path = directory / "events.csv.gz", directory / "events.parquet"
    chunk = 500_000
    schema = pa.schema([
        ("id", pa.int64()), ("customer", pa.string()), ("amount", pa.decimal128(12, 2)),
        ("status", pa.string()), ("placed_at", pa.timestamp("us", "UTC")),
    ])  # fmt: skip
    with (
        pa.CompressedOutputStream(str(csv_path), "gzip") as gz,
        pq.ParquetWriter(parquet_path, schema) as parquet,
    ):
        csv_writer = None
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = pa.array(range(start, start + n), pa.int64())
            table = pa.table(
                {
                    "id": ids,
                    "customer": pc.binary_join_element_wise("c", pc.cast(pc.bit_wise_and(ids, 4095), pa.string()), ""),
                    "amount": pc.cast(pc.divide(pc.cast(pc.bit_wise_and(ids, 65535), pa.float64()), 100.0), pa.decimal128(12, 2)),
                    "status": pc.if_else(pc.equal(pc.bit_wise_and(ids, 3), 0), "shipped", "placed"),
                    "placed_at": pc.cast(pc.add(pc.multiply(ids, 1_000_000), 1_764_547_200_000_000), pa.timestamp("us", "UTC")),
                },
                schema=schema,
            )  # fmt: skip
            if csv_writer is None:
                csv_writer = pcsv.CSVWriter(gz, schema)
            csv_writer.write_table(table)
            parquet.write_table(table, row_group_size=128 * 1024)
        if csv_writer is not None:
            csv_writer.close()
    return csv_path, parquet_path


def child(code: str, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run `code` in a fresh interpreter; (seconds, peak RSS MiB, its stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"child failed ({status}): {out}")
    return time.monotonic() - started, usage.ru_maxrss / 1024, out.strip().splitlines()[-1]


LOAD = """
    import os, time
    from dw_pipelines.resources.s3 import S3Resource
    from dw_pipelines.sync.files.runner import sync_files
    from dw_pipelines.sync.files.spec import FileStreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse
    resource = S3Resource(endpoint_url=os.environ["DW_S3_ENDPOINT_URL"],
        access_key_id=os.environ["DW_S3_ACCESS_KEY_ID"],
        secret_access_key=os.environ["DW_S3_SECRET_ACCESS_KEY"], region="us-east-1",
        path_style=True)
    spec = FileStreamSpec(source="bench", name="events", bucket="{bucket}", prefix="{prefix}",
        column_types={{"amount": "decimal(12,2)"}})
    warehouse = open_warehouse("{warehouse}")
    with resource.open() as store:
        started = time.monotonic()  # connected, like the reference: the call itself
        result = sync_files(spec, store, warehouse)
    print(result.rows_read, round(time.monotonic() - started, 3))
"""

REFERENCE = """
    import duckdb, time
    con = duckdb.connect("{warehouse}")
    con.execute("SET memory_limit = '192MB'")
    con.execute("SET enable_progress_bar = false")
    started = time.monotonic()
    con.execute("CREATE TABLE events AS SELECT * FROM {reader}('{path}')")
    print(con.execute("SELECT count(*) FROM events").fetchone()[0], round(time.monotonic() - started, 3))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dw_bench_files_") as tmp:
        work = Path(tmp)
        t = time.monotonic()
        csv_path, parquet_path = write_files(args.rows, work)
        print(f"wrote {args.rows:,} rows: {csv_path.stat().st_size / 2**20:.1f} MiB gzip CSV,"
              f" {parquet_path.stat().st_size / 2**20:.1f} MiB Parquet ({time.monotonic() - t:.1f} s)")  # fmt: skip
        server = s3_server.start(work / "s3")
        try:
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            client.upload_file(str(csv_path), BUCKET, "csv/events.csv.gz")
            client.upload_file(str(parquet_path), BUCKET, "parquet/events.parquet")
            env = server.env()
            print("\n| case | rows | call s | rows/s | / reference | process s | peak RSS MiB |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for label, prefix, path, reader in (
                ("gzip CSV", "csv/", csv_path, "read_csv"),
                ("Parquet", "parquet/", parquet_path, "read_parquet"),
            ):
                ref_s, ref_rss, ref_out = child(REFERENCE.format(
                    warehouse=work / f"ref_{prefix[:-1]}.duckdb", reader=reader, path=path))  # fmt: skip
                ref_rows, ref_call = ref_out.split()
                run_s, run_rss, run_out = child(
                    LOAD.format(bucket=BUCKET, prefix=prefix,
                                warehouse=work / f"load_{prefix[:-1]}.duckdb"), env)  # fmt: skip
                rows, call = run_out.split()
                print(f"| reference: DuckDB {reader}, local disk | {int(ref_rows):,} | {float(ref_call):.2f} |"
                      f" {int(ref_rows) / float(ref_call):,.0f} | 1.00x | {ref_s:.2f} | {ref_rss:.0f} |")  # fmt: skip
                print(f"| runner: {label} from S3 | {int(rows):,} | {float(call):.2f} |"
                      f" {int(rows) / float(call):,.0f} | {float(call) / float(ref_call):.2f}x |"
                      f" {run_s:.2f} | {run_rss:.0f} |")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
