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
            columns = ", ".join(warehouse.quote(k) for k in keys)
            table = warehouse.table(spec.source, spec.name)
            duplicates = warehouse.rows(
                f"SELECT {columns}, count(*) FROM {table} GROUP BY {columns}"
                " HAVING count(*) > 1 ORDER BY count(*) DESC LIMIT 5"
            )
            total = int(
                warehouse.scalar(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {columns}"
                    " HAVING count(*) > 1) d"
                )
            )
        return dg.AssetCheckResult(
            passed=total == 0,
            metadata={
                "duplicated_keys": total,
                "examples": ", ".join(str(tuple(row[:-1])) for row in duplicates),
            },
        )

    return [_check]
