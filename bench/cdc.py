"""Benchmark: PostgreSQL CDC into DuckDB — apply throughput, and commit-to-warehouse latency.

Prints figures; asserts nothing.

    .venv/bin/python bench/cdc.py                      # throughput (100k changes) and latency
    .venv/bin/python bench/cdc.py --changes 300000 --skip-latency

Throughput: a 100k-row table is snapshotted, then 100k changes (60% updates, 20% inserts,
20% deletes, in transactions of 100) are committed, and one CDC run applies them; the figure is
changes / seconds of that run (its own process; peak RSS from os.wait4).

Latency: a real Dagster daemon runs the source's CDC sensor at its default interval (30 s);
rows are committed at random moments and the time until each is in the warehouse is measured.

Targets (issue 3): >= 20,000 changes/s applied into DuckDB; latency under 60 s by default.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql://postgres@127.0.0.1:5432"
DB = "dw_bench_cdc"
PYTHON = sys.executable


def psql(db: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{db}", "-c", sql],
        check=True,
        capture_output=True,
    )


def reset_database(rows: int) -> None:
    psql(
        "postgres",
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        f" WHERE database = '{DB}'",
    )
    psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {DB}")
    psql(
        DB,
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
        " status text NOT NULL, amount numeric(12,2) NOT NULL, note text,"
        " updated_at timestamptz NOT NULL)",
    )
    psql(
        DB,
        f"INSERT INTO orders SELECT g, g % 5000, 'new', g % 1000 + 0.99, md5(g::text), now()"
        f" FROM generate_series(1, {rows}) g",
    )


def churn(rows: int, changes: int) -> None:
    """`changes` row changes in transactions of 100: 60% updates, 20% inserts, 20% deletes."""
    per_txn = 100
    statements = []
    for t in range(changes // per_txn):
        base = t * 20
        statements += [
            "BEGIN;",
            f"UPDATE orders SET status = 'paid', amount = amount + 1, updated_at = now()"
            f" WHERE id > {t * 60 % (rows * 6 // 10)} AND id <= {t * 60 % (rows * 6 // 10) + 60};",
            f"INSERT INTO orders SELECT g, g % 5000, 'new', 1.5, 'x', now()"
            f" FROM generate_series({rows + base + 1}, {rows + base + 20}) g;",
            f"DELETE FROM orders WHERE id > {rows * 6 // 10 + base}"
            f" AND id <= {rows * 6 // 10 + base + 20};",
            "COMMIT;",
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write("\n".join(statements))
        script.flush()
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{DB}", "-f", script.name],
            check=True,
            capture_output=True,
        )


RUN_CDC = """
import json, sys, time
from dw_pipelines.sync.cdc.runner import sync_postgres_cdc
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
spec = StreamSpec(source="bench", object="orders", mode="cdc")
source, warehouse = SqlSource(sys.argv[1], name="bench"), open_warehouse(sys.argv[2])
started = time.perf_counter()
result = sync_postgres_cdc("bench", [spec], source, warehouse)
print(json.dumps({"s": time.perf_counter() - started, "changes": result.changes,
                  "transactions": result.transactions, "snapshots": result.snapshots}))
"""


def run_cdc(warehouse: str) -> tuple[dict[str, object], float, float]:
    import json

    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [PYTHON, "-c", RUN_CDC, f"{PG}/{DB}", warehouse], cwd=ROOT, stdout=out
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("CDC run failed")
        out.seek(0)
        return (
            json.loads(out.read().decode().strip().splitlines()[-1]),
            wall,
            usage.ru_maxrss / 1024,
        )


def throughput(rows: int, changes: int, workdir: Path) -> None:
    reset_database(rows)
    warehouse = str(workdir / "cdc_bench.duckdb")
    first, _, _ = run_cdc(warehouse)
    print(f"snapshot of {rows:,} rows: {first['s']:.2f} s")
    churn(rows, changes)
    result, wall, rss = run_cdc(warehouse)
    call_s = float(result["s"])  # type: ignore[arg-type]
    applied = int(result["changes"])  # type: ignore[arg-type]
    print("| case | changes | transactions | call s | changes/s | process s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| apply into DuckDB | {applied:,} | {result['transactions']:,} | {call_s:.2f}"
        f" | {applied / call_s:,.0f} | {wall:.2f} | {rss:.0f} |"
    )


DEFS = """
import dagster as dg
from dw_pipelines.components import StreamCatalog
from dw_pipelines.resources.warehouse import WarehouseResource

catalog = StreamCatalog.resolve_from_yaml('''
sources:
  bench:
    type: postgres
    url_env: DW_BENCH_PG_URL
streams:
  - {source: bench, object: orders, mode: cdc}
''')
defs = dg.Definitions.merge(
    catalog.build_defs(None),
    dg.Definitions(resources={"warehouse": WarehouseResource(url=dg.EnvVar("DW_WAREHOUSE_URL"))}),
)
"""


def latency(samples: int, workdir: Path) -> None:
    reset_database(1000)
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    (workdir / "bench_cdc_defs.py").write_text(textwrap.dedent(DEFS))
    warehouse = str(workdir / "latency.duckdb")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DW_WAREHOUSE_URL": warehouse,
        "DW_BENCH_PG_URL": f"{PG}/{DB}",
        "PYTHONPATH": f"{workdir}:{ROOT}",
    }
    dagster = str(Path(PYTHON).parent / "dagster")
    target = ["-m", "bench_cdc_defs"]
    started = subprocess.run([dagster, "sensor", "start", "bench_cdc_sensor", *target], env=env,
                             capture_output=True, text=True, cwd=workdir)  # fmt: skip
    if started.returncode != 0:
        sys.exit(f"dagster sensor start failed:\n{started.stderr[-3000:]}")
    daemon = subprocess.Popen(
        [str(Path(PYTHON).parent / "dagster-daemon"), "run", *target],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_rows(warehouse, "SELECT count(*) FROM bench.orders", 1000, timeout=180)
        figures = []
        rng = random.Random(7)
        for n in range(samples):
            time.sleep(rng.uniform(5, 40))  # commits land anywhere in the sensor's interval
            key = 10_000 + n
            psql(DB, f"INSERT INTO orders VALUES ({key}, 1, 'latency', 1, 'x', now())")
            committed = time.monotonic()
            wait_for_rows(warehouse, f"SELECT count(*) FROM bench.orders WHERE id = {key}", 1, 300)
            figures.append(time.monotonic() - committed)
            print(f"  change {n + 1}: in the warehouse after {figures[-1]:.1f} s", flush=True)
        figures.sort()
        print(
            f"latency over {samples} changes, sensor at its default 30 s: median"
            f" {figures[len(figures) // 2]:.1f} s, max {figures[-1]:.1f} s"
        )
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def wait_for_rows(warehouse: str, sql: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(warehouse, read_only=True) as con:
                row = con.execute(sql).fetchone()
            if row and row[0] >= expected:
                return
        except duckdb.Error:
            pass  # not created yet, or a run holds the write lock
        time.sleep(0.25)
    sys.exit(f"timed out waiting for: {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--latency-samples", type=int, default=5)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dw_bench_cdc_") as tmp:
        workdir = Path(tmp)
        throughput(args.rows, args.changes, workdir)
        if not args.skip_latency:
            latency(args.latency_samples, workdir)
    psql(
        "postgres",
        f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{DB}'",
    )
    psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
