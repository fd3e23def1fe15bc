"""S3 file streams in Dagster: one asset per stream, its quarantine check and new-object sensor.

No `from __future__ import annotations`: Dagster reads config and context annotations at runtime.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.ingest.assets import (
    SOURCE_TAG,
    SYNC_MODE_TAG,
    WAREHOUSE_OP_TAG,
    source_resource_key,
    table_name,
)
from dw_pipelines.ingest.checks import in_step_checks, stream_check_results, stream_check_specs
from dw_pipelines.ingest.file_cursor import FileCursor, pending_batches
from dw_pipelines.ingest.partitions import PARTITIONED_TAG
from dw_pipelines.ingest.retries import mark_run_retryable
from dw_pipelines.sync.checks import StreamCheck
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.files.spec import SOURCE_FILE, FileStreamSpec, Partitioning
from dw_pipelines.sync.result import FILES_MODE

if TYPE_CHECKING:
    from dw_pipelines.sync.result import SyncResult


@dataclass(frozen=True)
class FileStreamSettings:
    sensor_interval_s: int = 60
    max_files_per_run: int = 500
    max_runs_per_tick: int = 10
    # How far before the newest requested object the sensor still looks for late arrivals.
    lookback: timedelta = timedelta(hours=1)
    start_date: str = "2024-01-01"  # first daily partition, for partitioned streams


class FilesConfig(dg.Config):
    """`keys`: load only these objects (the sensor's batches); otherwise every pending object
    of the partition, oldest first, at most `max_files` (default `max_files_per_run`)."""

    keys: list[str] | None = None
    max_files: int | None = None


def build_file_stream_defs(
    spec: FileStreamSpec,
    settings_: FileStreamSettings,
    *,
    description: str | None = None,
    owners: Sequence[str] = (),
    group: str | None = None,
    checks: Sequence[StreamCheck] = (),
) -> dg.Definitions:
    asset = _build_asset(spec, settings_, description, owners, group, checks)
    job = dg.define_asset_job(
        job_name(spec),
        selection=[dg.AssetKey([spec.source, spec.name])],
        description=f"Loads the new and rewritten objects of {spec.stream_id}.",
    )
    return dg.Definitions(
        assets=[asset],
        asset_checks=[_build_quarantine_check(spec)],
        jobs=[job],
        sensors=[_build_sensor(spec, settings_)],
    )


def job_name(spec: FileStreamSpec) -> str:
    return f"{spec.source}_{spec.name}_job"


def partitions_of(spec: FileStreamSpec, start_date: str) -> dg.DailyPartitionsDefinition | None:
    if spec.partitioning is Partitioning.NONE:
        return None
    # end_offset=1: today's partition exists, so files landing today can be loaded today.
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=1)


def _build_asset(
    spec: FileStreamSpec,
    settings_: FileStreamSettings,
    description: str | None,
    owners: Sequence[str],
    group: str | None,
    checks: Sequence[StreamCheck],
) -> dg.AssetsDefinition:
    """The declared checks (but freshness) are evaluated in the load's step, after it commits:
    the asset cannot run without loading, so a run of a check is a load and its checks."""
    partitions = partitions_of(spec, settings_.start_date)
    declared = in_step_checks(checks)
    warehouse_kind = settings.warehouse_kind()
    uri = f"s3://{spec.bucket}/{spec.prefix}{spec.glob}"

    @dg.asset(
        key=[spec.source, spec.name],
        group_name=group or spec.source,
        kinds={"s3", warehouse_kind},
        owners=list(owners),
        description=description or f"Files `{uri}` loaded once each ({spec.mode}).",
        partitions_def=partitions,
        # A CLI backfill of a date range is one run that loads each day in turn.
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        tags={
            SYNC_MODE_TAG: FILES_MODE,
            SOURCE_TAG: spec.source,
            **({PARTITIONED_TAG: "true"} if partitions else {}),
        },
        op_tags={WAREHOUSE_OP_TAG: warehouse_kind},
        metadata={
            "dagster/table_name": table_name(spec),
            "source_uri": uri,
            "file_mode": spec.mode,
            "on_rewrite": spec.on_rewrite,
            "primary_key": ", ".join(spec.primary_key),
            "partitioning": spec.partitioning.value,
        },
        required_resource_keys={"warehouse", source_resource_key(spec.source)},
        check_specs=stream_check_specs(spec, declared) or None,
    )
    def _load(
        context: dg.AssetExecutionContext, config: FilesConfig
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        # The runner (pyarrow, DuckDB) is imported where a load runs, not where definitions load.
        from dw_pipelines.ingest.metadata import log_sync, result_metadata
        from dw_pipelines.sync.files.runner import sync_files

        days: list[date | None] = (
            [date.fromisoformat(k) for k in context.partition_keys] if partitions else [None]
        )
        store_resource = getattr(context.resources, source_resource_key(spec.source))
        results: list[SyncResult] = []
        usage: dict[str, int] = {}
        try:
            with (
                store_resource.open() as store,
                context.resources.warehouse.open(context.run.run_id) as warehouse,
            ):
                for day in days:
                    results.append(
                        sync_files(
                            spec,
                            store,
                            warehouse,
                            partition=day,
                            max_files=config.max_files or settings_.max_files_per_run,
                            keys=set(config.keys) if config.keys is not None else None,
                            log=context.log.info,
                        )
                    )
                # The connection is this run's own: its totals are the run's (BigQuery's cost).
                usage = warehouse.usage()
        except SyncError as exc:
            mark_run_retryable(context, exc)
            raise dg.Failure(description=f"stream '{spec.stream_id}': {exc}") from None
        except Exception as exc:
            mark_run_retryable(context, exc)
            raise
        total = _combine(results)
        total.warehouse_usage = usage
        log_sync(context.log.info, total)
        if total.files_quarantined:
            context.log.warning(
                f"{spec.stream_id}: {total.files_quarantined} file(s) quarantined:"
                f" {', '.join(k for k, _ in total.quarantined[:5])}"
            )
        yield dg.MaterializeResult(metadata=result_metadata(total))
        if declared:
            # Without a primary key, a row is named by the object it came from.
            keys = spec.primary_key or (SOURCE_FILE,)
            yield from stream_check_results(
                spec,
                declared,
                context.resources,
                source_resource_key(spec.source),
                total,
                keys=keys,
            )

    return _load


def _combine(results: list["SyncResult"]) -> "SyncResult":
    """One result for the daily partitions a run loaded in turn."""
    from dw_pipelines.sync.result import SyncResult

    total = results[-1]
    if len(results) == 1:
        return total
    combined = SyncResult(
        total.stream_id,
        total.mode,
        total.table,
        row_count=total.row_count,
        cursor_before=results[0].cursor_before,
        cursor_after=total.cursor_after,
        columns=total.columns,
        bookkeeping=total.bookkeeping,
        partition=f"{results[0].partition}..{total.partition}",
    )
    for r in results:
        for name in ("files_listed", "files_loaded", "files_replaced", "files_quarantined",
                     "files_skipped", "files_pending", "rows_read", "rows_inserted",
                     "rows_updated", "rows_unchanged", "rows_deleted", "bad_rows",
                     "duration_s"):  # fmt: skip
            setattr(combined, name, getattr(combined, name) + getattr(r, name))
        combined.loaded += r.loaded
        combined.quarantined += r.quarantined
        for name in ("columns_added", "columns_altered", "columns_dropped"):
            seen = getattr(combined, name)
            seen += [c for c in getattr(r, name) if c not in seen]
    return combined


def _build_quarantine_check(spec: FileStreamSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([spec.source, spec.name]),
        name="no_quarantined_files",
        description="Warns while any object's current version is quarantined (see _dw.files).",
        required_resource_keys={"warehouse"},
        op_tags={WAREHOUSE_OP_TAG: settings.warehouse_kind()},
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from dw_pipelines.ingest.metadata import bullets
        from dw_pipelines.sync.files.runner import quarantined_files

        with context.resources.warehouse.open() as warehouse:
            bad = quarantined_files(warehouse, spec.stream_id)
        return dg.AssetCheckResult(
            passed=not bad,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined_files": len(bad),
                "files": dg.MetadataValue.md(bullets([f"`{k}`: {e}" for k, e in bad])),
            },
        )

    return _check


def sensor_name(spec: FileStreamSpec) -> str:
    return f"{spec.source}_{spec.name}_sensor"


def _build_sensor(spec: FileStreamSpec, settings_: FileStreamSettings) -> dg.SensorDefinition:
    @dg.sensor(
        name=sensor_name(spec),
        minimum_interval_seconds=settings_.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        job_name=job_name(spec),
        required_resource_keys={source_resource_key(spec.source)},
        description=f"Requests runs of {spec.stream_id} for new or rewritten objects.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from dw_pipelines.sync.files.runner import listed_objects

        cursor = FileCursor.load(context.cursor)
        with getattr(context.resources, source_resource_key(spec.source)).open() as store:
            objects = listed_objects(spec, store)
        batches = pending_batches(
            spec,
            objects,
            cursor,
            lookback=settings_.lookback,
            max_files=settings_.max_files_per_run,
            max_runs=settings_.max_runs_per_tick,
            first_day=date.fromisoformat(settings_.start_date),
            today=datetime.now(UTC).date(),
        )
        runs = [
            dg.RunRequest(
                run_key=f"{spec.stream_id}:{batch.run_key}",
                partition_key=batch.partition.isoformat() if batch.partition else None,
                run_config={
                    "ops": {op_name(spec): {"config": {"keys": [o.key for o in batch.objects]}}}
                },
                # a run that fails for a passing reason is retried (run_retries in dagster.yaml);
                # a materialization without `keys` loads whatever is still pending
                tags={"dw/files": str(len(batch.objects)), "dagster/max_retries": "2"},
            )
            for batch in batches
        ]
        if not runs:
            return dg.SensorResult(
                skip_reason=f"no new object among {len(objects)}", cursor=cursor.dump()
            )
        return dg.SensorResult(run_requests=runs, cursor=cursor.dump())

    return _sensor


def op_name(spec: FileStreamSpec) -> str:
    return f"{spec.source}__{spec.name}"
