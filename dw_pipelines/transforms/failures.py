"""What failed a dbt test: a few of the rows its query returns, for the asset check's result.

dbt reports only how many rows failed; the rows themselves (the duplicate key, the value not
accepted, the orphan id) are what someone fixing the data needs first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from dw_pipelines.sync.warehouses import open_warehouse

EXAMPLES = 5


def failing_rows(run_results: Mapping[str, Any], url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The first rows of every failed or warned test of a dbt run, by the test's unique id."""
    failed = {
        r["unique_id"]: r["compiled_code"]
        for r in run_results.get("results", [])
        if r.get("status") in ("fail", "warn") and r.get("compiled_code")
    }
    if not failed:
        return {}
    warehouse = open_warehouse(url)
    try:
        return {
            unique_id: warehouse.rows(f"SELECT * FROM (\n{sql}\n) AS failures LIMIT {EXAMPLES:d}")
            for unique_id, sql in failed.items()
        }
    finally:
        warehouse.close()


def with_examples(event: Any, rows: Mapping[str, list[tuple[Any, ...]]]) -> Any:
    """The check result of a failed test with its failing rows attached; any other event as is."""
    if not isinstance(event, dg.AssetCheckResult) or event.passed:
        return event
    unique_id = event.metadata.get("unique_id")
    examples = rows.get(unique_id.value) if unique_id is not None else None  # type: ignore[union-attr]
    if not examples:
        return event
    shown = "; ".join(", ".join(str(v) for v in row) for row in examples)
    return event.with_metadata(
        {
            **event.metadata,
            "failing_examples": dg.MetadataValue.json([list(map(str, r)) for r in examples]),
        }
    )._replace(description=f"Failing rows (first {len(examples)}): {shown}")
