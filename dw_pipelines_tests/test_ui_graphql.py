"""Lineage and run history as the Dagster UI loads them: the real webserver's /graphql, after the
demo's `all_streams_job` (fixture `demo_ui`, one webserver for every UI test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dw_pipelines_tests.conftest import warehouse_rows
from dw_pipelines_tests.ui_fixtures import DemoUi

pytestmark = pytest.mark.ui

MANIFEST = (
    Path(__file__).resolve().parents[1] / "dw_pipelines/defs/transforms/dbt/target/manifest.json"
)

LINEAGE = """
query { assetNodes { assetKey { path } groupName dependencyKeys { path } dependedByKeys { path } } }
"""
RUNS = """
query { runsOrError { __typename ... on Runs { results {
  runId jobName status
  stats { __typename ... on RunStatsSnapshot { stepsSucceeded stepsFailed materializations } }
} } } }
"""
LATEST_MATERIALIZATIONS = """
query { assetsOrError { __typename ... on AssetConnection { nodes {
  key { path }
  assetMaterializations(limit: 1) {
    runId
    metadataEntries { label ... on IntMetadataEntry { intValue } }
  }
} } } }
"""


def key(path: list[str]) -> str:
    return "/".join(path)


def lineage(ui: DemoUi) -> dict[str, dict[str, set[str]]]:
    """Each asset's upstream and downstream keys as the webserver serves them."""
    return {
        key(n["assetKey"]["path"]): {
            "group": n["groupName"],
            "upstream": {key(k["path"]) for k in n["dependencyKeys"]},
            "downstream": {key(k["path"]) for k in n["dependedByKeys"]},
        }
        for n in ui.graphql(LINEAGE)["assetNodes"]
    }


def dbt_asset_key(manifest: dict, unique_id: str) -> str:
    """The asset key dagster-dbt gives a dbt node: a source is its stream, a model its folder/name."""
    if unique_id.startswith("source."):
        source = manifest["sources"][unique_id]
        return key([source["source_name"], source["name"]])
    return key(manifest["nodes"][unique_id]["fqn"][1:])


def demo_runs(ui: DemoUi) -> dict[str, dict]:
    """The demo's runs by job: the partitioned stream's own job, then `all_streams_job`."""
    runs = ui.graphql(RUNS)["runsOrError"]["results"]
    by_job = {run["jobName"]: run for run in runs}
    assert len(runs) == len(by_job) == 2, runs
    return by_job


def test_lineage_runs_from_a_raw_stream_through_its_staging_model_to_the_marts(
    demo_ui: DemoUi,
) -> None:
    graph = lineage(demo_ui)

    assert "staging/stg_demo_shop__orders" in graph["demo_shop/orders"]["downstream"]
    assert graph["staging/stg_demo_shop__orders"]["upstream"] == {"demo_shop/orders"}
    assert "staging/stg_demo_shop__orders" in graph["marts/daily_sales"]["upstream"]
    assert "marts/daily_sales" in graph["staging/stg_demo_shop__orders"]["downstream"]


def test_every_raw_stream_feeds_exactly_its_own_staging_model(demo_ui: DemoUi) -> None:
    """But the partitioned `demo_shop/order_events`: it syncs in its own job, and a staging view
    over it would fail `all_streams_job` on a warehouse where that job has not run yet."""
    graph = lineage(demo_ui)
    raw = {
        k: v
        for k, v in graph.items()
        if v["group"] not in ("staging", "marts") and k != "demo_shop/order_events"
    }
    assert graph["demo_shop/order_events"]["downstream"] == set()

    assert raw, "no raw stream assets"
    for stream, node in raw.items():
        source, name = stream.split("/")
        assert node["upstream"] == set(), stream
        assert node["downstream"] == {f"staging/stg_{source}__{name}"}, stream


def test_the_webserver_shows_the_dependencies_the_dbt_project_declares(demo_ui: DemoUi) -> None:
    manifest = json.loads(MANIFEST.read_text())
    declared = {
        dbt_asset_key(manifest, unique_id): {
            dbt_asset_key(manifest, d) for d in node["depends_on"]["nodes"]
        }
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
    graph = lineage(demo_ui)

    assert {k for k, v in graph.items() if v["group"] in ("staging", "marts")} == set(declared)
    assert {k: graph[k]["upstream"] for k in declared} == declared


def test_run_history_holds_the_demo_s_two_successful_runs_materializing_every_asset(
    demo_ui: DemoUi,
) -> None:
    runs = demo_runs(demo_ui)

    assert set(runs) == {"demo_shop_order_events_job", "all_streams_job"}
    assert {run["status"] for run in runs.values()} == {"SUCCESS"}
    assert sum(run["stats"]["stepsFailed"] for run in runs.values()) == 0
    assert sum(run["stats"]["materializations"] for run in runs.values()) == len(
        demo_ui.graphql(LINEAGE)["assetNodes"]
    )


def test_every_asset_was_last_materialized_by_its_demo_run(demo_ui: DemoUi) -> None:
    runs = demo_runs(demo_ui)
    assets = demo_ui.graphql(LATEST_MATERIALIZATIONS)["assetsOrError"]["nodes"]

    def job(path: list[str]) -> str:
        return (
            "demo_shop_order_events_job"
            if path == ["demo_shop", "order_events"]
            else "all_streams_job"
        )

    assert {
        key(a["key"]["path"]): [m["runId"] for m in a["assetMaterializations"]] for a in assets
    } == {key(a["key"]["path"]): [runs[job(a["key"]["path"])]["runId"]] for a in assets}


def test_materialization_row_counts_are_the_warehouse_tables_row_counts(demo_ui: DemoUi) -> None:
    """Streams and marts are tables and carry `dagster/row_count`; staging models are views."""
    assets = demo_ui.graphql(LATEST_MATERIALIZATIONS)["assetsOrError"]["nodes"]
    shown = {
        tuple(a["key"]["path"]): e["intValue"]
        for a in assets
        for e in a["assetMaterializations"][0]["metadataEntries"]
        if e["label"] == "dagster/row_count"
    }
    counted = {
        table: warehouse_rows(
            demo_ui.warehouse_url, f'SELECT count(*) FROM "{table[0]}"."{table[1]}"'
        )[0][0]
        for table in shown
    }

    assert set(shown) == {
        tuple(a["key"]["path"]) for a in assets if a["key"]["path"][0] != "staging"
    }
    assert shown[("demo_shop", "orders")] == 2000
    assert shown == counted
