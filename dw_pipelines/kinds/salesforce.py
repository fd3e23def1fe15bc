"""Salesforce orgs: objects read through the REST and Bulk 2.0 APIs, in a concurrency pool, and
a weekly reconcile job that finds purged records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.kinds.base import (
    SourceKind,
    SourceModel,
    Spec,
    Stream,
    check_cron,
    stopped_schedule,
    table_stream_defs,
)
from dw_pipelines.kinds.postgres_cdc import check_cdc_stream
from dw_pipelines.kinds.sql import table_stream_spec
from dw_pipelines.resources.salesforce import SalesforceOrg, SalesforceResource
from dw_pipelines.sync.sources.salesforce_defaults import CURSOR_FALLBACKS
from dw_pipelines.sync.spec import SyncMode

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel


class SalesforceModel(SalesforceOrg):
    """The org (see `SalesforceOrg`) and how its streams run in Dagster."""

    reconcile_schedule: str | None = "0 4 * * 0"
    """Cron of `<source>_reconcile_job`: every stream synced, then its keys compared with the
    org's to catch purged records (starts stopped). Null: no such job."""
    pool: str = "salesforce"
    """Dagster concurrency pool of the source's streams; its limit is set on the instance
    (dagster.yaml `concurrency.pools.default_limit`, or `dagster instance concurrency set`)."""


class SalesforceSourceModel(SourceModel):
    type: Literal["salesforce"]
    salesforce: SalesforceModel | None = None
    """Settings of the org."""

    @property
    def settings(self) -> SalesforceModel:
        return self.salesforce or SalesforceModel()


class SalesforceKind(SourceKind):
    types = ("salesforce",)
    model = SalesforceSourceModel

    def resource(self, name: str, source: SourceModel) -> SalesforceResource:
        assert isinstance(source, SalesforceSourceModel)
        org = {field: getattr(source.settings, field) for field in SalesforceOrg.model_fields}
        return SalesforceResource(name=name, **org)

    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        # Every Salesforce record has an Id; an incremental stream without a cursor takes
        # SystemModstamp (or LastModifiedDate, CreatedDate) at run time.
        spec = table_stream_spec(stream)
        spec = replace(spec, primary_key=spec.primary_key or ("Id",))
        replace(spec, cursor=spec.cursor or CURSOR_FALLBACKS[0]).validate()
        if stream.schedule:
            check_cron(stream.stream_label, stream.schedule)
        if spec.mode is SyncMode.CDC:
            check_cdc_stream(name, "salesforce", None, stream)
        return spec

    def validate_source(self, name: str, source: SourceModel) -> None:
        assert isinstance(source, SalesforceSourceModel)
        cron = source.settings.reconcile_schedule
        if cron:
            check_cron(name, cron, "salesforce.reconcile_schedule", f"sources.{name}")

    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        assert isinstance(source, SalesforceSourceModel)
        pool = source.settings.pool
        defs = [table_stream_defs(s, source_kind="salesforce", pool=pool) for s in streams]
        merge = [s.spec for s in streams if s.spec.mode is SyncMode.INCREMENTAL_MERGE]  # type: ignore[union-attr]
        cron = source.settings.reconcile_schedule
        if cron and merge:
            job = dg.define_asset_job(
                f"{name}_reconcile_job",
                selection=[dg.AssetKey([s.source, s.name]) for s in merge],
                config={
                    "ops": {f"{s.source}__{s.name}": {"config": {"reconcile": True}} for s in merge}
                },
                description=f"Sync {name}'s merge streams, then delete rows whose record was purged.",
            )
            defs.append(
                dg.Definitions(
                    jobs=[job],
                    schedules=[stopped_schedule(f"{name}_reconcile_schedule", job, cron)],
                )
            )
        return dg.Definitions.merge(*defs) if defs else dg.Definitions()
