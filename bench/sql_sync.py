"""Benchmark: PostgreSQL table -> DuckDB warehouse, full and incremental, against a reference.

Prints figures; asserts nothing. Every measured step runs in its own child process, so wall
time and peak RSS (os.wait4's ru_maxrss) are that step's alone.

    .venv/bin/python bench/sql_sync.py                 # 1M rows
    .venv/bin/python bench/sql_sync.py --sizes 1000000,4000000   # RSS flatness of the full sync

Targets (issue 2): engine full sync <= 1.2x the reference (psql \\copy to CSV + DuckDB read_csv);
incremental after 1% churn <= 25% of it; engine peak RSS <= 400 MiB and flat in table size.
Issue 10: the README's `dagster asset materialize -m dw_pipelines.definitions` of the shipped
`demo_shop/orders` stream (DW_DEMO_SHOP_URL pointed at the bench database) <= 1.5x the reference
for the first load and <= 1.3x after 1% churn, in a fresh and a warm DAGSTER_HOME; loading the
definitions <= 1.0 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql://postgres@127.0.0.1:5432"
PYTHON = sys.executable
DAGSTER = str(Path(sys.executable).parent / "dagster")


@dataclass
class Figure:
    case: str
    rows: int
    wall_s: float  # the measured call: the engine call in its process, or the whole command
    rss_mib: float
    process_s: float | None = None  # the whole process, Python start-up and imports included
    cpu_s: float | None = None  # the process's CPU seconds: steadier than wall on a busy machine


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (MiB, from os.wait4), stdout and CPU seconds of one child process."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(argv[:4])} failed:\n{err.read().decode()[-3000:]}")
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return wall, usage.ru_maxrss / 1024, out.read().decode(), cpu


def psql(db: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{db}", "-c", sql],
        check=True,
        capture_output=True,
    )


def generate(db: str, rows: int) -> None:
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    psql(
        db,
        # The demo shop's `orders` columns (and a wide text one): the shipped stream's declared
        # checks (not-null, accepted values, range, reconcile) run on them through Dagster.
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
        " status text NOT NULL, total_amount numeric(12,2) NOT NULL, currency char(3) NOT NULL,"
        " note text NOT NULL, ordered_at timestamptz NOT NULL, created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL)",
    )
    psql(
        db,
        "INSERT INTO orders SELECT g, (g::bigint * 7919) % 100000,"
        " (ARRAY['pending','paid','shipped','delivered','cancelled'])[1 + g % 5],"
        " round((random() * 10000)::numeric, 2), 'EUR', md5(g::text) || md5((g + 1)::text),"
        " now() - interval '400 days' + g * interval '10 ms',"
        " now() - interval '400 days' + g * interval '10 ms',"
        f" now() - interval '200 days' + g * interval '10 ms' FROM generate_series(1, {rows}) g",
    )
    psql(db, "CREATE INDEX ON orders (updated_at)")
    psql(db, "VACUUM ANALYZE orders")


def churn(db: str, rows: int) -> int:
    updated, inserted = rows // 100, rows // 1000
    psql(
        db,
        "UPDATE orders SET status = 'delivered', total_amount = total_amount + 1, updated_at = now()"
        " WHERE id % 100 = 7",
    )
    psql(
        db,
        f"INSERT INTO orders SELECT g, 1, 'pending', 9.99, 'EUR', 'new', now(), now(), now()"
        f" FROM generate_series({rows + 1}, {rows + inserted}) g",
    )
    return updated + inserted


ENGINE = textwrap.dedent(
    """
    import sys, time
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse
    source_url, warehouse, mode = sys.argv[1:4]
    spec = StreamSpec(source="bench", object="public.orders", mode=mode,
                      primary_key=["id"], cursor="updated_at" if mode != "full_refresh" else None,
                      lookback="1 minute" if mode != "full_refresh" else None)
    started = time.perf_counter()
    wh = open_warehouse(warehouse)
    result = sync_stream(spec, SqlSource(source_url, name="bench"), wh)
    wh.close()
    print(time.perf_counter() - started)
    """
)

REFERENCE = textwrap.dedent(
    """
    import sys, duckdb
    csv, target = sys.argv[1:3]
    con = duckdb.connect(target)
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}')")
    con.close()
    """
)

DEFINITIONS_LOAD = textwrap.dedent(
    """
    import time
    started = time.perf_counter()
    import dw_pipelines.definitions
    dw_pipelines.definitions.defs()
    print(time.perf_counter() - started)
    """
)

# Exactly what a user runs (README): the shipped code location with its executor, the YAML
# catalog's `demo_shop/orders` stream (with its primary-key check) pointed at the bench
# database by the env var the catalog names, and an instance from the project's dagster.yaml.
MATERIALIZE = [DAGSTER, "asset", "materialize", "-m", "dw_pipelines.definitions"]
MATERIALIZE += ["--select", "demo_shop/orders"]


def dagster_home(path: Path) -> Path:
    """A fresh DAGSTER_HOME, set up as the Makefile does (dagster.yaml copied in)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", path / "dagster.yaml")
    return path


def materialize(case: str, rows: int, home: Path, warehouse: str, source_url: str) -> Figure:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DW_DEMO_SHOP_URL": source_url,
        "DW_WAREHOUSE_URL": warehouse,
    }
    wall, rss, _, cpu = run(MATERIALIZE, env)
    return Figure(case, rows, wall, rss, wall, cpu)


# Dagster's own floor: the same CLI, instance configuration and executor materializing one asset
# that does nothing. What it costs, no stream through Dagster can avoid.
FLOOR = textwrap.dedent(
    """
    import dagster as dg

    @dg.asset
    def nothing() -> None:
        return None

    defs = dg.Definitions(assets=[nothing], executor=dg.in_process_executor)
    """
)


def floor(out: Path, home: Path) -> Figure:
    location = out / "dagster_floor.py"
    location.write_text(FLOOR)
    argv = [DAGSTER, "asset", "materialize", "-f", str(location), "--select", "nothing"]
    wall, rss, _, cpu = run(argv, {**os.environ, "DAGSTER_HOME": str(home)})
    return Figure("dagster floor: one empty asset, warm DAGSTER_HOME", 0, wall, rss, wall, cpu)


def definitions_load(repeat: int = 3) -> tuple[float, float, float]:
    """Median seconds to import and build the code location: in its process, the process, and
    the process's CPU seconds."""
    calls, processes, cpus = [], [], []
    for _ in range(repeat):
        wall, _, said, cpu = run([PYTHON, "-c", DEFINITIONS_LOAD])
        calls.append(float(said.split()[-1]))
        processes.append(wall)
        cpus.append(cpu)
    return statistics.median(calls), statistics.median(processes), statistics.median(cpus)


def fresh(path: Path) -> str:
    for suffix in ("", ".wal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return str(path)


def bench(rows: int, db: str, out: Path, with_dagster: bool) -> list[Figure]:
    figures: list[Figure] = []
    source_url = f"{PG}/{db}"
    print(f"generating {rows:,} rows in {db} ...", file=sys.stderr)
    generate(db, rows)

    csv = out / "orders.csv"
    copy_wall, copy_rss, _, copy_cpu = run(
        ["psql", source_url, "-c", f"\\copy orders TO '{csv}' CSV HEADER"]
    )
    load_wall, load_rss, _, load_cpu = run(
        [PYTHON, "-c", REFERENCE, str(csv), fresh(out / "reference.duckdb")]
    )
    reference = Figure(
        "reference: psql \\copy + DuckDB read_csv",
        rows,
        copy_wall + load_wall,
        max(copy_rss, load_rss),
        copy_wall + load_wall,
        copy_cpu + load_cpu,
    )
    figures.append(reference)
    csv.unlink()

    wall, rss, said, cpu = run(
        [PYTHON, "-c", ENGINE, source_url, fresh(out / "full.duckdb"), "full_refresh"]
    )
    figures.append(Figure("engine: full_refresh", rows, float(said.split()[-1]), rss, wall, cpu))
    merge_db = fresh(out / "merge.duckdb")
    wall, rss, said, cpu = run([PYTHON, "-c", ENGINE, source_url, merge_db, "incremental_merge"])
    figures.append(
        Figure(
            "engine: incremental_merge, first load", rows, float(said.split()[-1]), rss, wall, cpu
        )
    )

    if with_dagster:
        # The first run in a new DAGSTER_HOME creates the instance's storage; later runs reuse it.
        home = dagster_home(out / "dagster_home")
        # Two warehouses with the default file name: the dbt manifest names the warehouse's
        # database (the file's stem), and a new name costs one dbt parse on the next load.
        (out / "a").mkdir(exist_ok=True)
        (out / "b").mkdir(exist_ok=True)
        first, second = fresh(out / "a" / "warehouse.duckdb"), fresh(out / "b" / "warehouse.duckdb")
        figures.append(
            materialize("dagster: first load, fresh DAGSTER_HOME", rows, home, first, source_url)
        )
        figures.append(
            materialize("dagster: first load, warm DAGSTER_HOME", rows, home, second, source_url)
        )
        figures.append(floor(out, home))

    changed = churn(db, rows)
    wall, rss, said, cpu = run([PYTHON, "-c", ENGINE, source_url, merge_db, "incremental_merge"])
    figures.append(
        Figure(
            "engine: incremental_merge after 1% churn",
            changed,
            float(said.split()[-1]),
            rss,
            wall,
            cpu,
        )
    )
    if with_dagster:
        figures.append(
            materialize(
                "dagster: after 1% churn, warm DAGSTER_HOME", changed, home, second, source_url
            )
        )
        other_home = dagster_home(out / "dagster_home_fresh")
        figures.append(
            materialize(
                "dagster: after 1% churn, fresh DAGSTER_HOME",
                changed,
                other_home,
                first,
                source_url,
            )
        )
    return figures


def table(figures: list[Figure]) -> str:
    reference = figures[0].wall_s
    lines = [
        "| case | rows | call s | rows/s | / reference | process s | process CPU s | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        lines.append(
            f"| {f.case} | {f.rows:,} | {f.wall_s:.2f} | {f.rows / f.wall_s:,.0f}"
            f" | {f.wall_s / reference:.2f}x | {f.process_s or 0:.2f} | {f.cpu_s or 0:.2f}"
            f" | {f.rss_mib:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--sizes", default="", help="comma-separated sizes for an RSS-flatness table"
    )
    parser.add_argument("--db", default="dw_bench")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--no-dagster", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    figures = bench(args.rows, args.db, args.out, not args.no_dagster)
    print(f"\n## PostgreSQL -> DuckDB, {args.rows:,} rows\n")
    print(table(figures))
    print(
        "\ntargets: engine full <= 1.2x reference; incremental after 1% churn <= 0.25x;"
        " peak RSS <= 400 MiB; through dagster: first load <= 1.5x, after churn <= 1.3x"
    )
    if not args.no_dagster:
        call, process, cpu = definitions_load()
        print(
            f"\ndefinitions load (import dw_pipelines.definitions + defs(), median of 3):"
            f" {call:.2f} s in its process, {process:.2f} s with Python start-up"
            f" ({cpu:.2f} CPU s); target <= 1.0 s"
        )

    if args.sizes:
        print("\n## Full sync by table size (RSS should stay flat)\n")
        print("| rows | reference s | engine full s | ratio | engine peak RSS MiB |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for size in [int(s) for s in args.sizes.split(",")]:
            f = bench(size, args.db, args.out, with_dagster=False)
            print(
                f"| {size:,} | {f[0].wall_s:.2f} | {f[1].wall_s:.2f} | {f[1].wall_s / f[0].wall_s:.2f}x | {f[1].rss_mib:.0f} |"
            )
    if not args.keep:
        psql("postgres", f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")


if __name__ == "__main__":
    main()
