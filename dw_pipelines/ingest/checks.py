"""Asset checks on synced tables: the promise of no duplicate, verified in the warehouse.

The check is declared on the stream's asset and evaluated in the asset's own step, right after
the sync commits: a separate check step would cost a process and a code-location load per run
for one query. A run that selects only the check evaluates it without syncing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.sync.spec import StreamSpec, SyncMode

if TYPE_CHECKING:
    from dw_pipelines.sync.warehouses.base import Warehouse

PRIMARY_KEY_CHECK = "primary_key_is_unique"


def primary_key_check(spec: StreamSpec) -> dg.AssetCheckSpec | None:
    """A primary-key uniqueness check for every stream that keeps one row per key."""
    if not spec.primary_key or spec.mode is SyncMode.INCREMENTAL_APPEND:
        return None  # append streams keep every version of a row: keys repeat by design
    return dg.AssetCheckSpec(
        PRIMARY_KEY_CHECK,
        asset=dg.AssetKey([spec.source, spec.name]),
        description=f"No two rows of the warehouse table share ({', '.join(spec.primary_key)}).",
    )


def primary_key_result(spec: StreamSpec, warehouse: Warehouse) -> dg.AssetCheckResult:
    duplicates = warehouse.duplicate_keys(
        warehouse.table(spec.source, spec.name), list(spec.primary_key)
    )
    return dg.AssetCheckResult(
        check_name=PRIMARY_KEY_CHECK,
        passed=duplicates.total == 0,
        metadata={
            "duplicated_keys": duplicates.total,
            "examples": ", ".join(str(key) for key, _ in duplicates.examples),
        },
    )
