"""Asset checks on synced tables: the promise of no duplicate, verified in the warehouse.

No `from __future__ import annotations`: Dagster reads the context annotation at runtime.
"""

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.assets import WAREHOUSE_OP_TAG
from dw_pipelines.sync.spec import StreamSpec, SyncMode


def build_stream_checks(spec: StreamSpec) -> list[dg.AssetChecksDefinition]:
    """A primary-key uniqueness check for every stream that keeps one row per key."""
    if not spec.primary_key or spec.mode is SyncMode.INCREMENTAL_APPEND:
        return []  # append streams keep every version of a row: keys repeat by design
    keys = list(spec.primary_key)

    @dg.asset_check(
        asset=dg.AssetKey([spec.source, spec.name]),
        name="primary_key_is_unique",
        description=f"No two rows of the warehouse table share ({', '.join(keys)}).",
        required_resource_keys={"warehouse"},
        op_tags={WAREHOUSE_OP_TAG: settings.warehouse_kind()},
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with context.resources.warehouse.open() as warehouse:
            duplicates = warehouse.duplicate_keys(warehouse.table(spec.source, spec.name), keys)
        return dg.AssetCheckResult(
            passed=duplicates.total == 0,
            metadata={
                "duplicated_keys": duplicates.total,
                "examples": ", ".join(str(key) for key, _ in duplicates.examples),
            },
        )

    return [_check]
