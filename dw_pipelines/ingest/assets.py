"""One software-defined asset per declared stream, running the sync engine.

No `from __future__ import annotations` here: Dagster reads the config annotation at runtime.
"""

from collections.abc import Iterator, Sequence

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.checks import primary_key_check, primary_key_result
from dw_pipelines.ingest.retries import mark_run_retryable
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.spec import StreamSpec

SYNC_MODE_TAG = "dw/sync_mode"
SOURCE_TAG = "dw/source"
WAREHOUSE_OP_TAG = "dw/warehouse"


class SyncConfig(dg.Config):
    """Run options. A window loads `window_start <= cursor < window_end` (ISO text or numbers)
    without reading or moving the stream's cursor: that is how a range is backfilled."""

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
) -> dg.AssetsDefinition:
    """`pool` names a Dagster concurrency pool shared by the streams of a rate-limited source.

    The stream's primary-key check is evaluated in the same step, after the sync; the asset can
    be subset so that a run selecting only the check evaluates it without syncing."""
    warehouse_kind = settings.warehouse_kind()
    check = primary_key_check(spec)

    key = dg.AssetKey([spec.source, spec.name])
    asset = dg.AssetSpec(
        key,
        group_name=group or spec.source,
        kinds={source_kind, warehouse_kind},
        owners=list(owners),
        description=description or f"`{spec.object}` from {spec.source}, synced {spec.mode.value}.",
        tags={SYNC_MODE_TAG: spec.mode.value, SOURCE_TAG: spec.source},
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
    @dg.multi_asset(
        name=key.to_python_identifier(),
        specs=[asset],
        op_tags={WAREHOUSE_OP_TAG: warehouse_kind},
        required_resource_keys={"warehouse", source_resource_key(spec.source)},
        pool=pool,
        check_specs=[check] if check else None,
        can_subset=True,
    )
    def _step(
        context: dg.AssetExecutionContext, config: SyncConfig
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        if context.selected_asset_keys:  # empty when the run selected only the check
            yield _sync(context, config)
        if check is not None and check.key in context.selected_asset_check_keys:
            with context.resources.warehouse.open() as warehouse:
                yield primary_key_result(spec, warehouse)

    def _sync(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        # The engine (pyarrow, drivers) is imported where a sync runs, not where definitions load.
        from dw_pipelines.ingest.metadata import result_metadata
        from dw_pipelines.sync.engine import Window, reconcile_stream, sync_stream
        from dw_pipelines.sync.state import cursor_text

        window = None
        if config.window_start is not None or config.window_end is not None:
            window = Window(config.window_start, config.window_end)
        source_resource = getattr(context.resources, source_resource_key(spec.source))
        usage: dict[str, object] = {}
        try:
            with source_resource.open() as source, context.resources.warehouse.open() as warehouse:
                try:
                    result = sync_stream(
                        spec, source, warehouse, window=window, log=context.log.info
                    )
                    if config.reconcile:
                        reconciled = reconcile_stream(spec, source, warehouse, log=context.log.info)
                        result.rows_deleted += reconciled.rows_deleted
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
        context.log.info(
            f"{spec.stream_id}: read {result.rows_read}, inserted {result.rows_inserted},"
            f" updated {result.rows_updated}, cursor {cursor_text(result.cursor_after)}"
        )
        return dg.MaterializeResult(metadata={**result_metadata(result), **usage})

    return _step


def source_run_metadata(source: object) -> dict[str, object]:
    """What a source reports about the run besides rows (e.g. the SaaS API calls it made)."""
    if not source.abilities.run_metadata:  # type: ignore[attr-defined]
        return {}
    return dict(source.run_metadata())  # type: ignore[attr-defined]
