"""CDC streams in Dagster: one multi-asset per source, its slot-lag checks, job and sensor.

The CDC streams of one source share one replication slot, so they are materialized together:
the slot's changes are applied to every table they touch in one pass, and a run of any of them
is a run of all. Each stream is still its own asset (`[source, name]`) with its own metadata.

No `from __future__ import annotations`: Dagster reads config and context annotations at runtime.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

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
from dw_pipelines.ingest.metadata import log_sync, result_metadata
from dw_pipelines.sync.cdc.pgoutput import lsn_text
from dw_pipelines.sync.cdc.runner import CdcOptions, sync_postgres_cdc
from dw_pipelines.sync.cdc.slot_status import SlotStatus, slot_name, slot_status
from dw_pipelines.sync.checks import StreamCheck
from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.spec import StreamSpec


class CdcConfig(dg.Config):
    """`resnapshot: true` drops and recreates the slot and copies every table again: the way
    back after the slot was dropped or invalidated."""

    resnapshot: bool = False


@dataclass(frozen=True)
class CdcSettings:
    """Per-source CDC settings from the YAML."""

    options: CdcOptions = CdcOptions()
    sensor_interval_s: int = 30
    # The sensor also requests a run when the slot holds this much WAL that concerns none of
    # our tables, so the slot keeps advancing while the captured tables are idle.
    advance_after_bytes: int = 16 << 20
    lag_warn_bytes: int = 256 << 20
    lag_fail_bytes: int = 1 << 30
    lag_warn_age: timedelta = timedelta(minutes=15)
    lag_fail_age: timedelta = timedelta(hours=1)


def cdc_job_name(source: str) -> str:
    return f"{source}_cdc_job"


def build_cdc_defs(
    source: str,
    specs: Sequence[StreamSpec],
    settings_: CdcSettings,
    *,
    descriptions: dict[str, str | None],
    owners: dict[str, list[str]],
    groups: dict[str, str | None],
    checks: dict[str, Sequence[StreamCheck]] | None = None,
) -> dg.Definitions:
    """`checks`: each stream's declared checks by name, evaluated in the CDC step after the
    changes are applied (a run of one stream is a run of all, and of all their checks)."""
    keys = [dg.AssetKey([source, s.name]) for s in specs]
    declared = {s.name: in_step_checks((checks or {}).get(s.name, ())) for s in specs}
    asset = _build_multi_asset(source, specs, settings_, descriptions, owners, groups, declared)
    job = dg.define_asset_job(
        cdc_job_name(source),
        selection=keys,
        description=f"Applies every change waiting in {source}'s replication slot.",
    )
    return dg.Definitions(
        assets=[asset],
        asset_checks=[_build_lag_check(source, key, settings_) for key in keys],
        jobs=[job],
        sensors=[_build_sensor(source, settings_, job.name)],
    )


def _build_multi_asset(
    source: str,
    specs: Sequence[StreamSpec],
    cdc: CdcSettings,
    descriptions: dict[str, str | None],
    owners: dict[str, list[str]],
    groups: dict[str, str | None],
    declared: dict[str, list[StreamCheck]],
) -> dg.AssetsDefinition:
    warehouse_kind = settings.warehouse_kind()
    asset_specs = [
        dg.AssetSpec(
            key=[source, spec.name],
            group_name=groups.get(spec.name) or source,
            kinds={"postgres", warehouse_kind},
            owners=owners.get(spec.name, []),
            description=descriptions.get(spec.name)
            or f"`{spec.object}` from {source}, mirrored by change data capture.",
            tags={SYNC_MODE_TAG: "cdc", SOURCE_TAG: source},
            metadata={
                "dagster/table_name": table_name(spec),
                "source_object": spec.object,
                "sync_mode": "cdc",
                "deletes": spec.deletes,
                "replication_slot": slot_name(source, cdc.options.slot),
            },
        )
        for spec in specs
    ]

    @dg.multi_asset(
        name=f"{source}_cdc",
        specs=asset_specs,
        op_tags={WAREHOUSE_OP_TAG: warehouse_kind},
        required_resource_keys={"warehouse", source_resource_key(source)},
        can_subset=False,
        check_specs=[c for s in specs for c in stream_check_specs(s, declared[s.name])] or None,
    )
    def _cdc(context: dg.AssetExecutionContext, config: CdcConfig):
        source_resource = getattr(context.resources, source_resource_key(source))
        try:
            with (
                source_resource.open() as src,
                context.resources.warehouse.open(context.run.run_id) as warehouse,
            ):
                result = sync_postgres_cdc(
                    source,
                    list(specs),
                    src,
                    warehouse,
                    options=cdc.options,
                    resnapshot=config.resnapshot,
                    log=context.log.info,
                )
        except SyncError as exc:
            raise dg.Failure(description=str(exc)) from None
        context.log.info(
            f"{source}: {result.transactions} transaction(s), {result.changes} change(s) applied;"
            f" slot at {lsn_text(result.lsn_after or result.lsn_before)}"
        )
        for spec in specs:
            log_sync(context.log.info, result.streams[spec.stream_id])
            synced = result.streams[spec.stream_id]
            yield dg.MaterializeResult(
                asset_key=[source, spec.name], metadata=result_metadata(synced)
            )
            if declared[spec.name]:
                yield from stream_check_results(
                    spec,
                    declared[spec.name],
                    context.resources,
                    source_resource_key(source),
                    synced,
                    keys=synced.primary_key,  # a CDC stream may take its key from the table
                )

    return _cdc


def slot_lag_severity(
    cdc: CdcSettings, lag_bytes: int, age_s: float | None
) -> tuple[bool, dg.AssetCheckSeverity]:
    age = age_s or 0.0
    if lag_bytes >= cdc.lag_fail_bytes or age >= cdc.lag_fail_age.total_seconds():
        return False, dg.AssetCheckSeverity.ERROR
    if lag_bytes >= cdc.lag_warn_bytes or age >= cdc.lag_warn_age.total_seconds():
        return False, dg.AssetCheckSeverity.WARN
    return True, dg.AssetCheckSeverity.WARN


def _build_lag_check(source: str, key: dg.AssetKey, cdc: CdcSettings) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name="replication_slot_lag",
        description=(
            "WAL the source keeps for this stream's slot and the age of the oldest change not yet"
            " applied: warns, then fails, above the source's thresholds."
        ),
        required_resource_keys={source_resource_key(source)},
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        status = _slot_status(context.resources, source, cdc, cdc.lag_warn_bytes)
        if status.state in ("missing", "lost"):
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"slot": status.slot, "status": status.state},
            )
        age = status.oldest_pending_age_s
        passed, severity = slot_lag_severity(cdc, status.lag_bytes, age)
        return dg.AssetCheckResult(
            passed=passed,
            severity=severity,
            metadata={
                "slot": status.slot,
                "lag_bytes": status.lag_bytes,
                "retained_wal_bytes": status.retained_bytes,
                "oldest_pending_change_age_s": round(age, 1) if age is not None else 0.0,
                "wal_status": status.wal_status,
                "confirmed_lsn": lsn_text(status.confirmed_lsn),
            },
        )

    return _check


def _build_sensor(source: str, cdc: CdcSettings, job_name: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{source}_cdc_sensor",
        job_name=job_name,
        minimum_interval_seconds=cdc.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        required_resource_keys={source_resource_key(source)},
        description=(
            "Peeks at the replication slot and requests a CDC run only when changes are waiting"
            " (or unrelated WAL has piled up behind the slot). Cursor: the last applied LSN."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext):
        active = context.instance.get_runs_count(
            dg.RunsFilter(
                job_name=job_name,
                statuses=[
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                ],
            )
        )
        if active:
            return dg.SkipReason("a CDC run of this source is queued or in progress")
        status = _slot_status(context.resources, source, cdc, cdc.advance_after_bytes)
        if status.state == "missing":
            return dg.RunRequest(tags={"dw/cdc_reason": "no replication slot yet"})
        if status.state == "lost":
            return dg.SkipReason(
                f"replication slot '{status.slot}' was lost: run {job_name} with resnapshot: true"
            )
        if status.state == "active":
            return dg.SkipReason(f"replication slot '{status.slot}' is being read")
        context.update_cursor(lsn_text(status.confirmed_lsn))
        if status.changes_pending:
            return dg.RunRequest(tags={"dw/cdc_reason": "changes pending"})
        if status.lag_bytes >= cdc.advance_after_bytes:
            return dg.RunRequest(tags={"dw/cdc_reason": "advance slot past unrelated WAL"})
        return dg.SkipReason(f"no change pending at {lsn_text(status.confirmed_lsn)}")

    return _sensor


def _slot_status(resources: object, source: str, cdc: CdcSettings, peek_bytes: int) -> SlotStatus:
    """The slot as the check and sensor see it; the resource only lends the URL."""
    url = getattr(resources, source_resource_key(source)).source_url()
    return slot_status(url, source, cdc.options.slot, cdc.options.publication, peek_bytes)
