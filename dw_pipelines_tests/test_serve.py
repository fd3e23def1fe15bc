"""`make serve`'s three processes (docker/bin/*: the images' entrypoints) on a PostgreSQL
instance: the daemon runs schedules, sensors and automation, and the instance outlives them.

One deployment for the module (starting it and its first runs is most of the cost): the demo
shop's SQLite file, the demo's file drops on the session's S3 server, a DuckDB warehouse, each
in a temporary folder; the full-refresh schedule's cron every minute."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dw_pipelines.demo import drops, shop
from dw_pipelines_tests.deploy import Deployment, production_home, wait_until

LOCATION = "dw_pipelines"
REPOSITORY = "__repository__"
SCHEDULE = "full_refresh_sync_schedule"
FILE_SENSOR = "partner_drops_returns_sensor"
AUTOMATION_SENSOR = "default_automation_condition_sensor"
# The schedule's run loads demo_shop/products; the automation condition of the dbt model on it
# (AutomationCondition.eager()) then requests that model.
AUTOMATED_ASSET = ["staging", "stg_demo_shop__products"]
RUN_DEADLINE_S = 240  # the schedule's next minute, a run worker's start, a sync, under load

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status tags { key value } assetSelection { path } } }
  }
}
"""
MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 50) { runId timestamp } }
  }
}
"""


@pytest.fixture(scope="module")
def deployment(local_s3) -> Iterator[Deployment]:  # type: ignore[no-untyped-def]
    workdir = Path(tempfile.mkdtemp(prefix="dw_serve_"))
    shop.build(workdir / "shop.sqlite")
    drops.seed(local_s3.client())
    with production_home() as instance_env:
        deployment = Deployment(
            {
                **instance_env,
                **local_s3.env(),
                "DW_WAREHOUSE_URL": str(workdir / "warehouse.duckdb"),
                "DW_DEMO_SHOP_URL": f"sqlite:///{workdir / 'shop.sqlite'}",
                "DW_FULL_REFRESH_CRON": "* * * * *",
            },
            workdir,
        )
        try:
            deployment.start()
            selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
            deployment.graphql(
                "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename } }",
                s={**selector, "scheduleName": SCHEDULE},
            )
            for sensor in (FILE_SENSOR, AUTOMATION_SENSOR):
                deployment.graphql(
                    "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }",
                    s={**selector, "sensorName": sensor},
                )
            yield deployment
        finally:
            deployment.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def runs(deployment: Deployment, **tags: str) -> list[dict[str, Any]]:
    filter_ = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
    return deployment.graphql(RUNS, filter=filter_)["runsOrError"]["results"]


def successful_run(deployment: Deployment, **tags: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = runs(deployment, **tags)
        failed = [r["runId"] for r in found if r["status"] == "FAILURE"]
        assert not failed, f"runs {failed} failed; daemon log:\n{deployment.log('daemon')[-3000:]}"
        return next((r for r in found if r["status"] == "SUCCESS"), None)

    return wait_until(f"a successful run tagged {tags}", check, RUN_DEADLINE_S, every_s=2)


def materialization_run_ids(deployment: Deployment, path: list[str]) -> set[str]:
    data = deployment.graphql(MATERIALIZATIONS, key={"path": path})["assetOrError"]
    return {m["runId"] for m in data.get("assetMaterializations", [])}


def test_a_schedule_tick_launches_a_run_through_the_daemon(deployment: Deployment) -> None:
    run = successful_run(deployment, **{"dagster/schedule_name": SCHEDULE})
    assert run["runId"] in materialization_run_ids(deployment, ["demo_shop", "products"])


def test_a_sensor_tick_launches_a_run_through_the_daemon(deployment: Deployment) -> None:
    run = successful_run(deployment, **{"dagster/sensor_name": FILE_SENSOR})
    assert run["runId"] in materialization_run_ids(deployment, ["partner_drops", "returns"])


def test_an_asset_automation_condition_launches_a_run(deployment: Deployment) -> None:
    wait_until(
        f"an automation run materializing {AUTOMATED_ASSET}",
        lambda: any(
            r["status"] == "SUCCESS" and {"path": AUTOMATED_ASSET} in (r["assetSelection"] or [])
            for r in runs(deployment, **{"dagster/sensor_name": AUTOMATION_SENSOR})
        ),
        RUN_DEADLINE_S,
        every_s=2,
    )
    assert materialization_run_ids(deployment, AUTOMATED_ASSET)


def test_run_history_and_materializations_survive_a_restart(deployment: Deployment) -> None:
    successful_run(deployment, **{"dagster/schedule_name": SCHEDULE})
    before_runs = {r["runId"]: r["status"] for r in runs(deployment) if r["status"] == "SUCCESS"}
    before_materializations = materialization_run_ids(deployment, ["demo_shop", "products"])

    deployment.stop()
    deployment.start()

    after_runs = {r["runId"]: r["status"] for r in runs(deployment)}
    assert before_runs.items() <= after_runs.items()
    assert before_materializations <= materialization_run_ids(deployment, ["demo_shop", "products"])
