"""One software-defined asset per declared stream, running the sync engine.

No `from __future__ import annotations` here: Dagster reads the config annotation at runtime.
"""

import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.checks import (
    in_step_checks,
    primary_key_check,
    primary_key_result,
    stream_check_results,
    stream_check_specs,
)
from dw_pipelines.ingest.partitions import PARTITIONED_TAG, partition_window
from dw_pipelines.ingest.retries import mark_run_retryable
from dw_pipelines.sync.checks import StreamCheck
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.spec import StreamSpec

if TYPE_CHECKING:
    from dw_pipelines.sync.result import SyncResult

SYNC_MODE_TAG = "dw/sync_mode"
SOURCE_TAG = "dw/source"
WAREHOUSE_OP_TAG = "dw/warehouse"


class SyncConfig(dg.Config):
    """Run options. A window loads `window_start <= cursor < window_end` (ISO text or numbers)
    without reading or moving the stream's cursor: that is how a range is backfilled (a
    partitioned stream's partitions are such windows)."""

    window_start: str | None = None
    window_end: str | None = None
    reconcile: bool = False
    """After the sync, compare every key in the source with the table's and repair rows whose
    record was purged (deleted or marked per the stream's deletes); sources that list keys."""


def source_resource_key(source: str) -> str:
    return f"source_{source}"


def table_name(spec: StreamSpec) -> str:
    return f"{settings.warehouse_catalog()}.{spec.source}.{spec.name}"


def build_stream_asset(
    spec: StreamSpec,
    *,
    source_kind: str,
    description: str | None = None,
    owners: Sequence[str] = (),
    group: str | None = None,
    pool: str | None = None,
    partitions_def: dg.TimeWindowPartitionsDefinition | None = None,
    checks: Sequence[StreamCheck] = (),
) -> dg.AssetsDefinition:
    """`pool` names a Dagster concurrency pool shared by the streams of a rate-limited source.
    With `partitions_def`, a run of a partition (or a range, in one run) loads its window of the
    cursor column and leaves the live cursor alone; a run without a partition syncs as usual.

    The stream's primary-key check and its declared checks (but freshness) are evaluated in the
    same step, after the sync; the asset can be subset so that a run selecting only checks
    evaluates them without syncing."""
    warehouse_kind = settings.warehouse_kind()
    check = primary_key_check(spec)
    declared = in_step_checks(checks)
    check_specs = ([check] if check else []) + stream_check_specs(spec, declared)

    key = dg.AssetKey([spec.source, spec.name])
    asset = dg.AssetSpec(
        key,
        group_name=group or spec.source,
        kinds={source_kind, warehouse_kind},
        owners=list(owners),
        description=description or f"`{spec.object}` from {spec.source}, synced {spec.mode.value}.",
        tags={
            SYNC_MODE_TAG: spec.mode.value,
            SOURCE_TAG: spec.source,
            **({PARTITIONED_TAG: "true"} if partitions_def else {}),
        },
        metadata={
            "dagster/table_name": table_name(spec),
            "source_object": spec.object,
            "sync_mode": spec.mode.value,
            "primary_key": ", ".join(spec.primary_key),
            "cursor": spec.cursor or "",
            "lookback": str(spec.lookback or ""),
            "schema_policy": spec.schema_policy.value,
        },
    )

    # A one-asset multi_asset rather than @dg.asset: only it can be subset to the check alone.
    with warnings.catch_warnings():
        # backfill_policy is "beta" in Dagster 1.13, and the CLI's --partition-range needs it.
        warnings.simplefilter("ignore", dg.BetaWarning)
        decorator = dg.multi_asset(
            name=key.to_python_identifier(),
            specs=[asset],
            op_tags={WAREHOUSE_OP_TAG: warehouse_kind},
            required_resource_keys={"warehouse", source_resource_key(spec.source)},
            pool=pool,
            check_specs=check_specs or None,
            can_subset=True,
            partitions_def=partitions_def,
            # A range of partitions is one run and one window: one load unit, one commit.
            backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        )

    @decorator
    def _step(
        context: dg.AssetExecutionContext, config: SyncConfig
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        synced = None
        if context.selected_asset_keys:  # empty when the run selected only checks
            materialized, synced = _sync(context, config)
            yield materialized
        selected = context.selected_asset_check_keys
        if check is not None and check.key in selected:
            with context.resources.warehouse.open() as warehouse:
                yield primary_key_result(spec, warehouse)
        chosen = [c for c in declared if dg.AssetCheckKey(key, c.name) in selected]
        if chosen:
            yield from stream_check_results(
                spec, chosen, context.resources, source_resource_key(spec.source), synced
            )

    def _sync(
        context: dg.AssetExecutionContext, config: SyncConfig
    ) -> "tuple[dg.MaterializeResult, SyncResult]":
        # The engine (pyarrow, drivers) is imported where a sync runs, not where definitions load.
        from dw_pipelines.ingest.metadata import log_sync, result_metadata
        from dw_pipelines.sync.engine import Window, reconcile_stream, sync_stream

        window = partition_window(context)
        configured = config.window_start is not None or config.window_end is not None
        if window is not None and configured:
            raise dg.Failure(
                description=f"stream '{spec.stream_id}': a partition's run loads the partition's"
                " window; window_start/window_end are for runs without a partition"
            )
        if configured:
            window = Window(config.window_start, config.window_end)
        source_resource = getattr(context.resources, source_resource_key(spec.source))
        usage: dict[str, object] = {}
        try:
            with (
                source_resource.open() as source,
                context.resources.warehouse.open(context.run.run_id) as warehouse,
            ):
                try:
                    result = sync_stream(
                        spec, source, warehouse, window=window, log=context.log.info
                    )
                    if config.reconcile:
                        reconciled = reconcile_stream(spec, source, warehouse, log=context.log.info)
                        result.rows_deleted += reconciled.rows_deleted
                        for key, value in reconciled.warehouse_usage.items():
                            result.warehouse_usage[key] = result.warehouse_usage.get(key, 0) + value
                        result.row_count = reconciled.row_count
                finally:
                    usage = source_run_metadata(source)
        except SyncError as exc:
            mark_run_retryable(context, exc)
            # The engine's messages are written for the user and carry no secrets.
            raise dg.Failure(description=str(exc), metadata=usage) from None
        except Exception as exc:
            mark_run_retryable(context, exc)
            raise
        if partitions_def is not None and window is not None and not configured:
            keys = context.partition_key_range
            result.partition = keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
        log_sync(context.log.info, result)
        return dg.MaterializeResult(metadata={**result_metadata(result), **usage}), result

    return _step


def source_run_metadata(source: object) -> dict[str, object]:
    """What a source reports about the run besides rows (e.g. the SaaS API calls it made)."""
    if not source.abilities.run_metadata:  # type: ignore[attr-defined]
        return {}
    return dict(source.run_metadata())  # type: ignore[attr-defined]
