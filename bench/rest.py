"""Benchmark: Stripe-like charges through the local REST fake into DuckDB, 100 per page.

Prints figures; asserts nothing. The fake API runs in its own process (serving its charges from
an index, so a page costs the same whatever the collection's size); each measured step runs in a
child process, so wall time and peak RSS (os.wait4's ru_maxrss) are that step's alone.

    .venv/bin/python bench/rest.py                       # 50k and 200k charges, best of 5
    .venv/bin/python bench/rest.py --sizes 200000 --profile   # + the engine's top functions

reference: the same pages (`GET /v1/charges?limit=100&starting_after=<last id>` until
`has_more` is false) fetched with a plain `requests` Session, each body parsed (the next
page's cursor is in it) and discarded.
engine: the shipped `stripe.charges` declaration (dw_pipelines/defs/stripe/defs.yaml: endpoint,
stream mode, key, cursor) through `sync_stream` with RestSource into a new DuckDB warehouse —
what a run of the asset does, minus Dagster.
Target (issue 15): engine at most 1.5x the reference; peak RSS flat in the record count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "dw_pipelines/defs/stripe/defs.yaml"


def reference(base_url: str, ca: str, key: str) -> None:
    import requests

    http = requests.Session()
    http.trust_env, http.verify = False, ca
    http.headers["Authorization"] = f"Bearer {key}"
    started = time.monotonic()
    records, params = 0, {"limit": 100}
    while True:
        page = http.get(f"{base_url}/v1/charges", params=params)
        page.raise_for_status()
        body = page.json()
        records += len(body["data"])
        if not body["has_more"]:
            break
        params = {"limit": 100, "starting_after": body["data"][-1]["id"]}
    print(json.dumps({"records": records, "wall_s": time.monotonic() - started}))


def engine(base_url: str, ca: str, key: str, warehouse: str, profile: str = "") -> None:
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.rest.client import Secrets
    from dw_pipelines.sync.sources.rest.config import RestApi
    from dw_pipelines.sync.sources.rest.source import RestSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    catalog = yaml.safe_load(SHIPPED.read_text())["attributes"]
    stream = catalog["streams"][0]
    api = RestApi.model_validate(catalog["sources"]["stripe"]["rest"])
    api = api.model_copy(update={"max_requests": 10**6})  # the shipped budget is for a day's run
    source = RestSource("stripe", api, Secrets(token=key, base_url=base_url, ca_bundle=ca))
    target = open_warehouse(warehouse)
    spec = StreamSpec(
        source="stripe",
        object=stream["object"],
        mode=stream["mode"],
        primary_key=tuple(stream["primary_key"]),
        cursor=stream["cursor"],
        lookback=stream["lookback"],
    )
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.monotonic()
    result = sync_stream(spec, source, target)
    wall = time.monotonic() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    print(json.dumps({"records": result.rows_read, "wall_s": wall}))


def measured(*args: str) -> tuple[dict[str, float], float, float]:
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    out = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"{args[0]} failed")
    cpu = usage.ru_utime + usage.ru_stime
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024, cpu


def run(
    records: int, workdir: Path, profile: bool, repeat: int
) -> list[tuple[str, int, float, float, float]]:
    """Each case `repeat` times, the cases interleaved; a case's best wall time (the run least
    disturbed by the rest of the machine) with its CPU, and its highest peak RSS."""
    server = subprocess.Popen(
        [sys.executable, "-m", "dw_pipelines.devservices.rest_fake", "--dir", str(workdir),
         "--bench", str(records)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        ready = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        api = (ready["base_url"], ready["ca_bundle"], ready["stripe_key"])
        stats = str(workdir / "engine.prof") if profile else ""
        cases = (
            ("reference (requests, pages discarded)", ("reference", *api)),
            ("engine (REST -> DuckDB)", ("engine", *api, str(workdir / "wh.duckdb"), stats)),
        )
        best: dict[str, tuple[int, float, float, float]] = {}
        for _ in range(repeat):
            for case, args in cases:
                if case.startswith("engine"):
                    Path(args[4]).unlink(missing_ok=True)  # every run a first load
                figures, rss, cpu = measured(*args)
                wall, held = figures["wall_s"], best.get(case)
                if held is None or wall < held[1]:
                    best[case] = (
                        int(figures["records"]),
                        wall,
                        cpu,
                        max(rss, held[3] if held else 0),
                    )
                else:
                    best[case] = (*held[:3], max(rss, held[3]))
        if profile:
            import pstats

            pstats.Stats(stats).sort_stats("tottime").print_stats(15)
        return [(case, *best[case]) for case, _ in cases]
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "reference":
        return reference(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "engine":
        return engine(*sys.argv[2:7])
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's sync")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each case (best kept)")
    args = parser.parse_args()
    print(
        f"{'case':<40} {'records':>8} {'wall s':>7} {'rec/s':>9} {'process CPU s':>14}"
        f" {'peak RSS MiB':>13}"
    )
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(size, Path(tmp), args.profile, args.repeat)
        for case, records, wall, cpu, rss in rows:
            print(
                f"{case:<40} {records:>8} {wall:>7.2f} {records / wall:>9.0f} {cpu:>14.2f}"
                f" {rss:>13.0f}"
            )
        ratio = rows[1][2] / rows[0][2]
        print(f"{'engine / reference':<40} {'':>8} {ratio:>7.2f}x\n")


if __name__ == "__main__":
    main()
