"""Benchmark: PostgreSQL table -> BigQuery warehouse on the local emulator, against a plain load.

Prints figures; asserts nothing. Starts the BigQuery emulator itself (from `.venv-bqemulator`,
see dw_pipelines/devservices/bigquery_emulator.py), generates N rows (default 1,000,000) in the
local PostgreSQL, then, each in its own child process:

- the product: the engine's full refresh of the table into `bigquery://…?endpoint=<emulator>`
  (Parquet load job into the new table, key checks, the commit script swapping it in);
- the reference: one `load_table_from_file` of one Parquet file of the same rows (written from
  the same source read beforehand, not timed) into a table of the same columns.

The emulator is not BigQuery (it runs on one DuckDB, in this machine's memory): the ratio is for
catching regressions of the product's own overhead, not a claim about BigQuery.

    .venv/bin/python bench/bigquery.py              # 1M rows
    .venv/bin/python bench/bigquery.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sql_sync import PG, PYTHON, generate, psql, run  # noqa: E402

from dw_pipelines.devservices.bigquery_emulator import start_emulator  # noqa: E402

# Each request and each wait for a job: generous, the emulator loads 1M rows in one job.
TIMEOUT_S = 1800

ENGINE = textwrap.dedent(
    """
    import sys, time
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse
    source_url, warehouse = sys.argv[1:3]
    spec = StreamSpec(source="bench", object="public.orders", primary_key=["id"])
    started = time.perf_counter()
    wh = open_warehouse(warehouse)
    result = sync_stream(spec, SqlSource(source_url, name="bench"), wh)
    wh.close()
    print(time.perf_counter() - started, result.rows_read, result.warehouse_usage["bigquery_jobs"])
    """
)

# The same rows as one Parquet file of the types the warehouse loads with (read and written
# before the clock starts), then one load job into a table created beforehand.
REFERENCE = textwrap.dedent(
    """
    import sys, time, tempfile, os
    import pyarrow as pa, pyarrow.parquet as pq
    from google.cloud import bigquery
    from dw_pipelines.sync.sources.base import ReadRequest
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.warehouses import open_warehouse
    from dw_pipelines.sync.warehouses.bigquery import arrow_load_type
    source_url, warehouse = sys.argv[1:3]
    source = SqlSource(source_url, name="bench")
    columns = source.describe("public.orders")
    schema = pa.schema([pa.field(c.name, arrow_load_type(c)) for c in columns])
    path = os.path.join(tempfile.mkdtemp(prefix="dw_bench_bq_"), "orders.parquet")
    with pq.ParquetWriter(path, schema) as writer:
        for batch in source.read(ReadRequest("public.orders", tuple(columns))):
            writer.write_batch(pa.RecordBatch.from_arrays(
                [batch.column(f.name).cast(f.type) for f in schema], schema=schema))
    wh = open_warehouse(warehouse)
    wh.ensure_schema("reference")
    table = wh.table("reference", "orders")
    wh.execute(f"CREATE TABLE {table} ({wh.column_defs(columns, synced_at=False)})")
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                    create_disposition=bigquery.CreateDisposition.CREATE_NEVER)
    started = time.perf_counter()
    with open(path, "rb") as handle:
        job = wh.client.load_table_from_file(handle, wh._ref(table), job_config=config,
                                             timeout=wh.target.timeout_s)
    job.result(timeout=wh.target.timeout_s)
    elapsed = time.perf_counter() - started
    rows = wh.scalar(f"SELECT count(*) FROM {table}")
    wh.close()
    print(elapsed, rows, os.path.getsize(path))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    db = f"dw_bench_bq_{uuid.uuid4().hex[:8]}"
    t = time.monotonic()
    generate(db, args.rows)
    print(f"generated {args.rows:,} rows in PostgreSQL ({time.monotonic() - t:.1f} s)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory(prefix="dw_bench_bqemu_") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            url = (
                f"bigquery://{emulator.project}/bench?endpoint={emulator.endpoint}"
                f"&timeout={TIMEOUT_S}"
            )
            source = f"{PG}/{db}"
            _, ref_rss, out, _ = run([PYTHON, "-c", REFERENCE, source, url], env)
            ref_s, ref_rows, parquet_bytes = out.split()
            _, rss, out, _ = run([PYTHON, "-c", ENGINE, source, url], env)
            engine_s, rows, jobs = out.split()
        finally:
            emulator.stop()
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    ref, product = float(ref_s), float(engine_s)
    print("BigQuery emulator (bqemulator 1.4.0, not BigQuery: for regressions, not a claim)")
    print(f"{'case':58} {'rows':>10} {'call s':>8} {'peak RSS MiB':>13}")
    print(f"{'reference: one load_table_from_file of one Parquet file':58} {int(ref_rows):>10,}"
          f" {ref:>8.1f} {ref_rss:>13.0f}")  # fmt: skip
    print(f"{'engine: full refresh into bigquery://…?endpoint= (' + jobs + ' jobs)':58}"
          f" {int(rows):>10,} {product:>8.1f} {rss:>13.0f}")  # fmt: skip
    print(f"ratio engine / reference: {product / ref:.2f}"
          f" (Parquet file {int(parquet_bytes) / 2**20:.1f} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
