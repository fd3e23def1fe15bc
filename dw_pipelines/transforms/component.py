"""dagster-dbt's project component, fitted to this code location.

What it adds to `DbtProjectComponent`: model keys `[layer, model]` (`["marts", "customer_360"]`)
grouped by layer and kept fresh by declarative automation; dbt pointed at the warehouse
DW_WAREHOUSE_URL names; the same op tag the syncs carry, so the executor serialises DuckDB
writers; and a manifest parsed once when a clean checkout has none yet (`make install` prepares it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_dbt.asset_utils
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject, DbtProjectComponent
from dagster_dbt.dbt_manifest import read_manifest_path

from dw_pipelines import settings
from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL
from dw_pipelines.transforms.failures import failing_rows, with_examples
from dw_pipelines.transforms.profile import dbt_env

OWNERS = ["team:analytics-engineering"]


def warehouse_url() -> str:
    return os.environ.get(settings.WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL


@contextmanager
def warehouse_env() -> Iterator[None]:
    """DW_DBT_* set for the dbt subprocess (it inherits the environment), restored after."""
    env = dbt_env()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def put_dbt_on_path() -> None:
    """dagster-dbt runs `dbt` from PATH; `.venv/bin/python -m ...` without an activated
    virtualenv leaves the `dbt` installed beside that interpreter off it."""
    here = Path(sys.executable).parent
    if shutil.which("dbt") is None and (here / "dbt").exists():
        os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"


def release_dbt_connections() -> None:
    """Close what dagster-dbt's in-process adapter opened for row counts and column schemas.

    dbt-duckdb keeps the file open for the life of the process otherwise, and the next step run
    in this process (the in-process executor) could not open the warehouse itself.
    """
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    try:
        DuckDBConnectionManager.env().close()
    except Exception:  # no environment was ever opened in this process
        pass
    DuckDBConnectionManager.close_all_connections()


def manifest_target(project: DbtProject) -> tuple[str, str] | None:
    """The database the manifest's models were parsed for, and what precedes their folder's
    schema name (BigQuery's dataset prefix): their relation names carry both."""
    if not project.manifest_path.exists():
        return None
    nodes = json.loads(project.manifest_path.read_text())["nodes"].values()
    model = next((n for n in nodes if n["resource_type"] == "model"), None)
    if model is None:
        return None
    return model["database"], model["schema"].removesuffix(model["fqn"][1])


def ensure_manifest(project: DbtProject) -> None:
    """Parse the project when its manifest is missing (a clean checkout) or was prepared for
    another warehouse: dagster-dbt reads relation names from it for table names and row counts."""
    wanted = (settings.warehouse_catalog(), dbt_env()["DW_DBT_SCHEMA_PREFIX"])
    if manifest_target(project) != wanted:
        with warehouse_env():
            project.preparer.prepare(project)
        # dagster-dbt keeps each manifest path's JSON for the life of the process: a process
        # that loads the definitions again for another warehouse would get the old relations.
        read_manifest_path.cache_clear()


@contextmanager
def every_node_selected_from_the_manifest() -> Iterator[None]:
    """The default selection (every node) read from the manifest, as dagster-dbt itself does when
    dbt-core is absent. With dbt-core installed it asks dbt's selector, which rebuilds dbt's whole
    manifest object and graph: 0.4-0.9 s of every definitions load (webserver, daemon, each run)
    for the same set of nodes. Any other selection still goes to dbt."""
    select_with_dbt = dagster_dbt.asset_utils.select_unique_ids

    def select(*, select: str, exclude: str, selector: str, **rest: Any) -> set[str]:
        if select in ("", "fqn:*") and not exclude and not selector:
            return set(rest["manifest_json"]["nodes"])
        return set(select_with_dbt(select=select, exclude=exclude, selector=selector, **rest))

    dagster_dbt.asset_utils.select_unique_ids = select
    try:
        yield
    finally:
        dagster_dbt.asset_utils.select_unique_ids = select_with_dbt


@dataclass
class WarehouseDbtProject(DbtProjectComponent):
    """The warehouse's dbt project: staging views over the raw streams, marts on top."""

    @staticmethod
    @dg.template_var
    def warehouse_kind() -> str:
        """`duckdb`, `postgres` or `bigquery`: the value of the op tag the executor's rule reads."""
        return settings.warehouse_kind()

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = self.get_resource_props(manifest, unique_id)
        if node["resource_type"] != "model":
            # Sources keep dagster-dbt's `[source, table]` key: the stream assets' own key.
            return spec
        layer = node["fqn"][1]
        return spec.replace_attributes(
            key=dg.AssetKey([layer, node["name"]]),
            group_name=layer,
            owners=OWNERS,
            kinds={"dbt", settings.warehouse_kind()},
            automation_condition=dg.AutomationCondition.eager(),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # Under `dg launch` / `dagster dev` the base class refreshes the manifest (runs dbt)
        # before building from it; step processes load the definitions too.
        put_dbt_on_path()
        return super().build_defs(context)

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        if state_path is None:
            ensure_manifest(self.dbt_project)
        with every_node_selected_from_the_manifest():
            return super().build_defs_from_state(context, state_path)

    def execute(self, context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator:
        # Events are held until dbt exits: only then may this process open a DuckDB file to
        # read the failing rows of a failed test (and the dbt adapter must let go of it first).
        events: list[Any] = []
        error: Exception | None = None
        try:
            with warehouse_env():
                invocation = dbt.cli(self.get_cli_args(context), context=context)
                try:
                    events.extend(self._metadata_stream(invocation))
                except Exception as exc:  # a failed model or test: report what did happen first
                    error = exc
        finally:
            release_dbt_connections()
        rows = failing_rows(invocation.get_artifact("run_results.json"), warehouse_url())
        for event in events:
            yield with_examples(event, rows)
        if error is not None:
            raise error

    def _metadata_stream(self, invocation: DbtCliInvocation) -> Iterator:
        stream = invocation.stream()
        if "column_metadata" in self.include_metadata:
            stream = stream.fetch_column_metadata()
        if "row_count" in self.include_metadata:
            stream = stream.fetch_row_counts()
        return iter(stream)
