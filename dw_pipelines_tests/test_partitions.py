"""Time-partitioned SQL streams: a partition (or a range of them) is a window of the cursor
column loaded exactly once, without moving the live cursor; a run without a partition is the
live sync. In-process against PostgreSQL, then through the CLI and the daemon on the demo shop."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.demo import shop
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import DeclarationError
from dw_pipelines.sync.state import cursor_text
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests.conftest import kill_child_at, query, run_sql, warehouse_rows

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CATALOG = """
sources:
  src: {{type: postgres, url_env: DW_TEST_PARTITIONS_URL}}
streams:
  - source: src
    object: events
    mode: incremental_append
    primary_key: [id]
    cursor: {cursor}
    partitions: {{period: {period}, start: "2026-01-01"}}
"""


def stream_defs(warehouse_url: str, *, cursor: str = "at", period: str = "daily") -> dg.Definitions:
    catalog = StreamCatalog.resolve_from_yaml(CATALOG.format(cursor=cursor, period=period))
    return dg.Definitions.merge(
        catalog.build_defs(None),  # type: ignore[arg-type]
        dg.Definitions(resources={"warehouse": WarehouseResource(url=warehouse_url)}),
    )


def run_job(defs: dg.Definitions, partition: str | None = None) -> dict[str, object]:
    """One run of the stream's own job; the materialization's metadata."""
    result = defs.resolve_job_def("src_events_job").execute_in_process(partition_key=partition)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    materialization = event.step_materialization_data.materialization
    assert materialization.partition == partition
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.fixture
def events(pg_source_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DW_TEST_PARTITIONS_URL", pg_source_url)
    run_sql(
        pg_source_url,
        "CREATE TABLE events (id int PRIMARY KEY, at timestamptz NOT NULL, day date NOT NULL)",
        "INSERT INTO events VALUES"
        " (1, '2026-03-01 23:59:59.999999+00', '2026-02-28'),"
        " (2, '2026-03-02 00:00:00+00', '2026-03-01'),"
        " (3, '2026-03-02 00:30:00+01', '2026-03-31'),"  # 23:30 on March 1st in UTC
        " (4, '2026-03-02 23:59:59.999999+00', '2026-04-01'),"
        " (5, '2026-03-03 00:00:00+00', '2026-04-02')",
    )
    return pg_source_url


def loaded_ids(warehouse_url: str) -> list[int]:
    return [r[0] for r in warehouse_rows(warehouse_url, "SELECT id FROM src.events ORDER BY id")]


def live_cursor(warehouse_url: str, stream_id: str) -> str:
    warehouse = open_warehouse(warehouse_url)
    try:
        state = warehouse.read_state(stream_id)
    finally:
        warehouse.close()
    return cursor_text(state.cursor) if state else ""


def test_a_partition_loads_exactly_the_rows_of_its_utc_window(
    events: str, duckdb_warehouse_url: str
) -> None:
    metadata = run_job(stream_defs(duckdb_warehouse_url), "2026-03-02")

    assert loaded_ids(duckdb_warehouse_url) == [2, 4]
    assert metadata["partition"] == "2026-03-02"
    assert metadata["window"] == "[2026-03-02T00:00:00, 2026-03-03T00:00:00)"


def test_a_partition_run_loads_late_rows_once_and_leaves_the_live_cursor(
    events: str, duckdb_warehouse_url: str
) -> None:
    defs = stream_defs(duckdb_warehouse_url)
    run_job(defs)  # the live sync
    cursor = live_cursor(duckdb_warehouse_url, "src.events")
    # History imported late, behind the live cursor: only a backfill reads it.
    run_sql(events, "INSERT INTO events VALUES (6, '2026-03-02 12:00:00+00', '2026-03-02')")
    run_sql(events, "INSERT INTO events VALUES (7, '2026-03-05 12:00:00+00', '2026-03-05')")
    run_job(defs, "2026-03-02")
    metadata = run_job(defs, "2026-03-02")  # a rerun of the partition changes nothing

    assert loaded_ids(duckdb_warehouse_url) == [1, 2, 3, 4, 5, 6]
    assert metadata["rows_inserted"] == 0
    assert live_cursor(duckdb_warehouse_url, "src.events") == cursor == "2026-03-03T00:00:00+00:00"
    assert metadata["cursor_after"] == cursor


def test_a_run_without_a_partition_is_the_live_incremental_sync(
    events: str, duckdb_warehouse_url: str
) -> None:
    defs = stream_defs(duckdb_warehouse_url)
    run_job(defs, "2026-03-02")
    metadata = run_job(defs)

    assert loaded_ids(duckdb_warehouse_url) == [1, 2, 3, 4, 5]
    assert metadata["cursor_after"] == "2026-03-03T00:00:00+00:00"


def test_monthly_partitions_of_a_date_cursor_load_whole_months(
    events: str, duckdb_warehouse_url: str
) -> None:
    run_job(stream_defs(duckdb_warehouse_url, cursor="day", period="monthly"), "2026-03-01")

    assert loaded_ids(duckdb_warehouse_url) == [2, 3]


def test_the_partitions_definition_and_single_run_backfill_policy(
    duckdb_warehouse_url: str,
) -> None:
    defs = stream_defs(duckdb_warehouse_url, period="hourly")
    asset = defs.get_assets_def(dg.AssetKey(["src", "events"]))

    assert asset.partitions_def == dg.HourlyPartitionsDefinition(
        start_date=datetime(2026, 1, 1, tzinfo=UTC), timezone="UTC"
    )
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{source: src, object: t, partitions: {period: daily, start: '2026-01-01'}}",
         r"field 'partitions': windows of the cursor column need mode incremental_merge"),
        ("{source: src, object: t, mode: incremental_append, cursor: c,"
         " partitions: {period: daily, start: 'soon'}}",
         r"field 'partitions.start': 'soon' is not a date"),
        ("{source: src, object: t, mode: incremental_append, cursor: c,"
         " partitions: {period: monthly, start: '2026-01-15'}}",
         r"field 'partitions.start': monthly partitions start on the first day of a month"),
        ("{source: src, object: t, mode: incremental_append, cursor: c,"
         " partitions: {period: daily, start: '2026-01-01T06:00'}}",
         r"field 'partitions.start': daily partitions start at midnight"),
    ],
)  # fmt: skip
def test_a_bad_partitions_declaration_names_the_field(entry: str, message: str) -> None:
    yaml = f"sources: {{src: {{type: postgres, url_env: X}}}}\nstreams: [{entry}]"
    with pytest.raises(DeclarationError, match=message):
        StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]


def test_a_window_backfill_killed_before_its_commit_and_rerun_loads_each_row_once(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    """What a partition's run does, killed with SIGKILL at its commit and run again."""
    from dw_pipelines_tests.test_kill_and_rerun import rerun, seed

    seed(pg_source_url)  # 30,000 rows a millisecond apart from 2026-01-01 00:00 UTC
    rerun(pg_source_url, duckdb_warehouse_url, "incremental_append")  # the live sync
    cursor = live_cursor(duckdb_warehouse_url, "src.events")
    run_sql(
        pg_source_url,
        "INSERT INTO events SELECT g, 1, 'late', '2026-01-01 00:00:10+00'::timestamptz"
        " + (g - 40000) * interval '1 second' FROM generate_series(40000, 40019) g",
    )
    window = ["dw_pipelines_tests._sync_child", pg_source_url, duckdb_warehouse_url,
              "incremental_append", "2026-01-01T00:00:10", "2026-01-01T00:00:20"]  # fmt: skip

    kill_child_at(window, "commit", 1, after="batch")
    assert warehouse_rows(duckdb_warehouse_url, "SELECT count(*) FROM src.events") == [(30_000,)]
    done = subprocess.run(
        [sys.executable, "-m", *window], capture_output=True, text=True, timeout=300, cwd=ROOT
    )

    assert done.returncode == 0, done.stderr[-2000:]
    # Late rows 40000-40009 fall in the window; 40010-40019 (00:00:20 on) wait for theirs.
    expected = query(pg_source_url, "SELECT id FROM events WHERE id < 40010 ORDER BY id")
    assert warehouse_rows(duckdb_warehouse_url, "SELECT id FROM src.events ORDER BY id") == expected
    assert live_cursor(duckdb_warehouse_url, "src.events") == cursor


# -- the shipped demo stream, through the CLI and the daemon --------------------------------

STREAM = "demo_shop.order_events"
# The demo shop's six months of business end here, whatever the day the test runs.
SHOP_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Project:
    env: dict[str, str]
    shop: Path
    warehouse: str
    cwd: Path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The shipped code location on a fresh demo shop, its live sync done, then history
    imported late (behind the live cursor) around November 10-12."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    # The instance's SQLite storage created here, once: a daemon and a CLI creating it at the same
    # moment can both stamp its schema version, and every later open then fails.
    dg.DagsterInstance.from_config(str(home)).dispose()
    db = tmp_path / "shop.sqlite"
    shop.build(db, now=SHOP_NOW)
    warehouse = str(tmp_path / "warehouse.duckdb")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DW_WAREHOUSE_URL": warehouse,
        "DW_DEMO_SHOP_URL": f"sqlite:///{db}",
    }
    # The README's form, `-w workspace.yaml`, names the code location as the daemon knows it.
    shutil.copy(ROOT / "workspace.yaml", tmp_path / "workspace.yaml")
    live_sync(db, warehouse)
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO order_events (order_id, status, occurred_at) VALUES (1, 'paid', ?)",
            [("2026-11-09 23:59:59.999999",), ("2026-11-10 00:00:00.000000",),
             ("2026-11-12 23:59:59.999999",), ("2026-11-13 00:00:00.000000",)],
        )  # fmt: skip
    # Started outside the project root, whose `.env` (from `make demo`) Dagster would load.
    return Project(env, db, warehouse, tmp_path)


def live_sync(db: Path, warehouse_url: str) -> None:
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec

    spec = StreamSpec(
        source="demo_shop",
        object="order_events",
        mode="incremental_append",  # type: ignore[arg-type]
        primary_key=("id",),
        cursor="occurred_at",
    )
    source, warehouse = (
        SqlSource(f"sqlite:///{db}", name="demo_shop"),
        open_warehouse(warehouse_url),
    )
    try:
        sync_stream(spec, source, warehouse)
    finally:
        warehouse.close()
        source.close()


def source_ids(db: Path, start: str, end: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM order_events WHERE occurred_at >= ? AND occurred_at < ? ORDER BY id",
                (start, end),
            )
        ]


def assert_each_row_once(project: Project) -> None:
    assert (
        warehouse_rows(
            project.warehouse,
            f"SELECT id FROM {STREAM} GROUP BY id HAVING count(*) > 1",
        )
        == []
    )
    all_ids = source_ids(project.shop, "2000-01-01", "2100-01-01")
    loaded = [r[0] for r in warehouse_rows(project.warehouse, f"SELECT id FROM {STREAM}")]
    assert sorted(loaded) == [i for i in all_ids if i not in late_ids_outside(project)]


def late_ids_outside(project: Project) -> list[int]:
    """The late rows just outside November 10-12, which no backfill of those days may load."""
    with sqlite3.connect(project.shop) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM order_events WHERE occurred_at IN"
                " ('2026-11-09 23:59:59.999999', '2026-11-13 00:00:00.000000')"
            )
        ]


def test_a_partition_range_from_the_cli_loads_each_row_of_the_range_once_in_one_run(
    project: Project,
) -> None:
    cursor = live_cursor(project.warehouse, STREAM)
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "dw_pipelines.definitions",
         "--select", "demo_shop/order_events", "--partition-range", "2026-11-10...2026-11-12"],
        env=project.env, cwd=project.cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert_each_row_once(project)
    assert live_cursor(project.warehouse, STREAM) == cursor
    with dg.DagsterInstance.from_config(project.env["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs()
        event = instance.get_latest_materialization_event(dg.AssetKey(STREAM.split(".")))
    assert run.is_success
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["partition"].value == "2026-11-10..2026-11-12"
    assert metadata["rows_read"].value == len(source_ids(project.shop, "2026-11-10", "2026-11-13"))


@pytest.fixture
def daemon(project: Project) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the project's instance, loading the code location as
    workspace.yaml names it; stopped (with the processes it started) after the test."""
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        env=project.env,
        cwd=project.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finished_runs(
    home: str, backfill_id: str, expected: int, deadline_s: float
) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + deadline_s
    with dg.DagsterInstance.from_config(home) as instance:
        while True:
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            if len(runs) == expected and all(r.is_finished for r in runs):
                return list(runs)
            assert time.monotonic() < deadline, [(r.tags, r.status) for r in runs]
            time.sleep(0.5)


def test_a_job_backfill_through_the_daemon_runs_each_partition_once_in_its_own_run(
    project: Project, daemon: subprocess.Popen[bytes]
) -> None:
    cursor = live_cursor(project.warehouse, STREAM)
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml",
         "-j", "demo_shop_order_events_job", "--from", "2026-11-10", "--to", "2026-11-12",
         "--noprompt"],
        env=project.env, cwd=project.cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    backfill_id = done.stdout.split("Launched backfill job `")[1].split("`")[0]

    runs = finished_runs(project.env["DAGSTER_HOME"], backfill_id, 3, deadline_s=240)
    assert sorted(r.tags["dagster/partition"] for r in runs) == [
        "2026-11-10", "2026-11-11", "2026-11-12"
    ]  # fmt: skip
    assert all(r.is_success for r in runs), [r.status for r in runs]
    assert_each_row_once(project)
    assert live_cursor(project.warehouse, STREAM) == cursor
