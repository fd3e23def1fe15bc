"""The primary-key check runs after each sync, in the sync's own step, and fails when the
warehouse holds a duplicate."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dw_pipelines.demo import shop
from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import StreamSpec

ORDERS = StreamSpec(
    source="demo_shop",
    object="orders",
    mode="incremental_merge",  # type: ignore[arg-type]
    primary_key=("id",),
    cursor="updated_at",
)


@pytest.fixture
def resources(tmp_path: Path) -> dict[str, dg.ConfigurableResource]:
    shop.build(tmp_path / "shop.sqlite")
    return {
        source_resource_key("demo_shop"): SqlSourceResource(
            url=f"sqlite:///{tmp_path / 'shop.sqlite'}", name="demo_shop"
        ),
        "warehouse": WarehouseResource(url=str(tmp_path / "warehouse.duckdb")),
    }


def run(resources: dict[str, dg.ConfigurableResource]) -> dg.ExecuteInProcessResult:
    return dg.materialize([build_stream_asset(ORDERS, source_kind="sqlite")], resources=resources)


def test_the_primary_key_check_passes_after_a_sync(resources: dict) -> None:
    [evaluation] = run(resources).get_asset_check_evaluations()
    assert evaluation.check_name == "primary_key_is_unique"
    assert evaluation.passed
    assert evaluation.metadata["duplicated_keys"].value == 0


def test_the_primary_key_check_fails_on_a_duplicate_in_the_warehouse(resources: dict) -> None:
    run(resources)
    with duckdb.connect(resources["warehouse"].url) as con:
        con.execute("INSERT INTO demo_shop.orders SELECT * FROM demo_shop.orders WHERE id = 42")

    result = dg.materialize(
        [build_stream_asset(ORDERS, source_kind="sqlite")],
        resources=resources,
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["demo_shop", "orders"])),
    )

    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["duplicated_keys"].value == 1
    assert "42" in evaluation.metadata["examples"].value


def test_append_streams_have_no_key_check_since_they_keep_versions() -> None:
    spec = StreamSpec(
        source="s", object="t", mode="incremental_append", primary_key=("id",), cursor="c"
    )  # type: ignore[arg-type]
    assert not build_stream_asset(spec, source_kind="sqlite").check_specs


def test_the_check_is_evaluated_in_the_sync_step_without_a_step_of_its_own(
    resources: dict,
) -> None:
    result = run(resources)
    steps = {e.step_key for e in result.all_events if e.is_step_start}
    assert steps == {"demo_shop__orders"}
    assert result.get_asset_check_evaluations()[0].passed


def test_a_run_of_the_check_alone_does_not_sync(resources: dict) -> None:
    run(resources)
    result = dg.materialize(
        [build_stream_asset(ORDERS, source_kind="sqlite")],
        resources=resources,
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["demo_shop", "orders"])),
    )
    assert result.get_asset_materialization_events() == []
    assert len(result.get_asset_check_evaluations()) == 1
