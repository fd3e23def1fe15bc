"""A killed run never stalls the instance (issue 13, item 8): four `dagster asset materialize`
runs killed with SIGKILL fill `max_concurrent_runs: 4`; the daemon must still launch a fifth.

The four are held mid-run by the test holding the DuckDB warehouse's file lock (a sync waits
for it), so each is STARTED when killed. Production instance, code server, webserver and daemon
as `make serve` runs them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from dw_pipelines.demo import shop
from dw_pipelines_tests.deploy import Deployment, production_home, wait_until

DAGSTER = str(Path(sys.executable).parent / "dagster")
# The sensor's interval, the daemon's sensor loop and the queue's dequeue interval, under load.
RECOVERY_BOUND_S = 90

LAUNCH = """
mutation($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
  }
}
"""
RUN = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
RUNS = "query { runsOrError { ... on Runs { results { runId status } } } }"


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    workdir = Path(tempfile.mkdtemp(prefix="dw_dead_runs_"))
    shop.build(workdir / "shop.sqlite")
    with production_home() as instance_env:
        deployment = Deployment(
            {
                **instance_env,
                "DW_WAREHOUSE_URL": str(workdir / "warehouse.duckdb"),
                "DW_DEMO_SHOP_URL": f"sqlite:///{workdir / 'shop.sqlite'}",
                "DW_DEAD_RUN_SENSOR_INTERVAL_SECONDS": "5",
            },
            workdir,
        )
        try:
            deployment.start()
            yield deployment
        finally:
            deployment.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def run_statuses(deployment: Deployment) -> dict[str, str]:
    results = deployment.graphql(RUNS)["runsOrError"]["results"]
    return {r["runId"]: r["status"] for r in results}


def test_four_killed_runs_do_not_stop_the_daemon_launching_a_fifth(
    deployment: Deployment,
) -> None:
    warehouse = deployment.env["DW_WAREHOUSE_URL"]
    lock = duckdb.connect(warehouse)  # held: each sync waits for the file, its run STARTED
    try:
        materializers = [
            subprocess.Popen(
                [DAGSTER, "asset", "materialize", "--select", "demo_shop/products"]
                + ["-m", "dw_pipelines.definitions"],
                env=deployment.env,
                cwd=deployment.workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(4)
        ]
        killed = wait_until(
            "four runs STARTED",
            lambda: (
                started
                if len(
                    started := [i for i, s in run_statuses(deployment).items() if s == "STARTED"]
                )
                == 4
                else None
            ),
            180,
        )
        for process in materializers:
            process.send_signal(signal.SIGKILL)
            process.wait()
    finally:
        lock.close()

    launched = deployment.graphql(
        LAUNCH,
        p={
            "selector": {
                "repositoryLocationName": "dw_pipelines",
                "repositoryName": "__repository__",
                "jobName": "full_refresh_sync_job",
            },
            "mode": "default",
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    fifth = launched["run"]["runId"]
    assert launched["run"]["status"] == "QUEUED"

    wait_until(
        "the fifth run succeeds",
        lambda: deployment.graphql(RUN, id=fifth)["runOrError"]["status"] == "SUCCESS",
        RECOVERY_BOUND_S,
        every_s=2,
    )
    statuses = run_statuses(deployment)
    assert {statuses[run_id] for run_id in killed} == {"FAILURE"}
