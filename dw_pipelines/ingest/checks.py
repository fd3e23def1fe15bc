"""Asset checks on synced tables: the promise of no duplicate, and the checks a stream declares.

The checks are declared on the stream's asset and evaluated in the asset's own step, right after
the sync commits: a separate check step would cost a process and a code-location load per run
for a few queries. A run that selects only the checks evaluates them without syncing (SQL and API
streams; a file stream's and a CDC source's assets cannot be subset, so their checks run with
their load). Freshness is the exception: it is about time passing without a sync, so it is
Dagster's own `build_last_update_freshness_checks`, evaluated by a sensor per source.

A check of severity `error` is blocking: when it fails, the step fails after recording the
materialization, and the models downstream (dbt staging and marts) do not build in that run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import dagster as dg

from dw_pipelines.sync.checks import VALUE_CHECKS, CheckOutcome, StreamCheck
from dw_pipelines.sync.spec import StreamSpec, SyncMode

if TYPE_CHECKING:
    from dw_pipelines.sync.files.spec import FileStreamSpec
    from dw_pipelines.sync.result import SyncResult
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


def in_step_checks(checks: Sequence[StreamCheck]) -> list[StreamCheck]:
    """The declared checks evaluated in the sync's step (all but freshness)."""
    return [c for c in checks if c.type != "freshness"]


def stream_check_specs(
    spec: StreamSpec | FileStreamSpec, checks: Sequence[StreamCheck]
) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey([spec.source, spec.name])
    return [
        dg.AssetCheckSpec(
            c.name,
            asset=key,
            description=f"{c.description} Severity {c.severity}.",
            blocking=c.blocking,
            metadata={"severity": c.severity, "check_type": c.type},
        )
        for c in in_step_checks(checks)
    ]


def stream_check_results(
    spec: StreamSpec | FileStreamSpec,
    checks: Sequence[StreamCheck],
    resources: Any,
    source_key: str,
    synced: SyncResult | None,
    *,
    keys: Sequence[str] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate `checks` (already filtered to the run's selection) against the warehouse, and
    the source where a check needs it (reconciliation; schema drift in a run without a sync).
    A failing value check names rows by `keys`, default the stream's primary key."""
    from dw_pipelines.sync.checks import (
        evaluate_reconciliation,
        evaluate_schema_drift,
        evaluate_source_schema,
        evaluate_value_check,
    )
    from dw_pipelines.sync.errors import SyncError
    from dw_pipelines.sync.warehouses.base import DELETED_AT

    needs_source = any(
        c.type == "reconcile" or (c.type == "schema_drift" and synced is None) for c in checks
    )
    with ExitStack() as stack:
        warehouse = stack.enter_context(resources.warehouse.open())
        source = (
            stack.enter_context(getattr(resources, source_key).open()) if needs_source else None
        )
        table = warehouse.table(spec.source, spec.name)
        live = DELETED_AT if spec.deletes == "soft" else None
        for check in checks:
            try:
                if check.type in VALUE_CHECKS:
                    outcome = evaluate_value_check(
                        check,
                        warehouse,
                        table,
                        keys=spec.primary_key if keys is None else keys,
                        live_column=live,
                    )
                elif check.type == "schema_drift":
                    if synced is not None:
                        outcome = evaluate_schema_drift(synced)
                    else:
                        assert isinstance(spec, StreamSpec)  # file and CDC steps always sync
                        outcome = evaluate_source_schema(spec, source, warehouse)
                else:
                    assert isinstance(spec, StreamSpec)  # declarations allow it on SQL only
                    outcome = evaluate_reconciliation(spec, source, warehouse)
            except SyncError as exc:
                # e.g. the source is unreachable: the check fails saying so, the others still run
                outcome = CheckOutcome(False, f"the check could not run: {exc}")
            yield check_result(check, outcome)


def check_result(check: StreamCheck, outcome: CheckOutcome) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"severity": check.severity}
    for name, value in outcome.metadata.items():
        metadata[name] = dg.MetadataValue.json(value) if isinstance(value, list) else value
    return dg.AssetCheckResult(
        check_name=check.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR
        if check.severity == "error"
        else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata=metadata,
    )


def freshness_defs(
    source: str, streams: Sequence[tuple[dg.AssetKey, StreamCheck]]
) -> dg.Definitions:
    """Dagster's last-update freshness check per stream that declares one, and one sensor per
    source that evaluates them when due (stopped by default, like the schedules)."""
    if not streams:
        return dg.Definitions()
    # 1.13 marks these factories superseded by `FreshnessPolicy`, but a policy is a state shown
    # in the UI, not a check: it has no severity and cannot block. The warning would print in
    # every process that loads the definitions.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        checks = [
            check_def
            for key, c in streams
            for check_def in dg.build_last_update_freshness_checks(
                assets=[key],
                lower_bound_delta=c.within,  # type: ignore[arg-type]
                severity=dg.AssetCheckSeverity.ERROR
                if c.severity == "error"
                else dg.AssetCheckSeverity.WARN,
                blocking=c.blocking,
            )
        ]
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks, name=f"{source}_freshness_checks_sensor"
        )
    return dg.Definitions(asset_checks=checks, sensors=[sensor])
