"""What one kind of source (SQL database, Salesforce, S3 files ...) contributes to the catalog.

A kind is one module filling in `SourceKind`: the YAML `type:` names it answers to, the model of
its `sources.<name>` entry, the resource a sync opens, a validated spec per stream, and the
Dagster definitions of its streams. The catalog checks the YAML's shape and the rules across
entries (known sources, no duplicate stream) and hands each kind only its own entries: it never
asks which kind a source is. Optional abilities of a source are declared by the engine's source
classes (`Source.abilities`), not discovered here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import dagster as dg

from dw_pipelines.ingest.assets import build_stream_asset
from dw_pipelines.ingest.partitions import time_partitions
from dw_pipelines.sync.checks import CHECK_TYPES, StreamCheck
from dw_pipelines.sync.files.spec import FileStreamSpec
from dw_pipelines.sync.spec import DeclarationError, StreamSpec

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel

Spec = StreamSpec | FileStreamSpec


class SourceModel(dg.Model):
    """Fields every `sources.<name>` entry has; each kind adds its `type` and settings."""

    description: str | None = None


@dataclass(frozen=True)
class Stream:
    """One `streams:` entry: what the YAML says, its validated spec and resolved owners."""

    model: StreamModel
    spec: Spec
    owners: list[str]
    checks: tuple[StreamCheck, ...] = ()


class SourceKind(ABC):
    """One kind of source. Register an instance in `dw_pipelines.kinds.KINDS`."""

    types: ClassVar[tuple[str, ...]]
    """The YAML `type:` values of this kind."""
    model: ClassVar[type[SourceModel]]
    """The `sources.<name>` entry; its `type` field is a Literal of `types`."""

    @abstractmethod
    def resource(self, name: str, source: SourceModel) -> dg.ConfigurableResource:
        """The resource the source's streams open (key `source_<name>`); it reads secrets when
        opened, so an unconfigured source fails only its own streams."""

    @abstractmethod
    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        """The stream's spec, or a DeclarationError naming the field at fault."""

    def check_types(self, source: SourceModel, stream: StreamModel) -> tuple[str, ...]:
        """The `checks:` types this kind evaluates on the stream (see `sync/checks.py`)."""
        return tuple(t for t in CHECK_TYPES if t != "reconcile")

    def validate_source(self, name: str, source: SourceModel) -> None:
        """Settings of the source itself (DeclarationError naming `sources.<name>`)."""
        return None  # most kinds have no rule beyond their model's shape

    @abstractmethod
    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        """Assets, checks, jobs, schedules and sensors of the source's streams."""


def table_stream_defs(
    stream: Stream, *, source_kind: str, pool: str | None = None
) -> dg.Definitions:
    """A stream synced by the engine (a table or API object): its asset (with its key check), and
    the job of its own if the entry gives a `schedule` (and that schedule) or `partitions`.

    A partitioned stream's job is its only job: the location-wide jobs cannot hold assets with
    different partitions definitions, so they leave partitioned streams out. Run without a
    partition (its schedule, `dg launch --job`), the job is the live incremental sync; with
    partitions (`dagster job backfill`), one window backfill per partition."""
    spec = stream.spec
    assert isinstance(spec, StreamSpec)
    partitions = stream.model.partitions
    asset = build_stream_asset(
        spec,
        source_kind=source_kind,
        description=stream.model.description,
        owners=stream.owners,
        group=stream.model.group,
        pool=pool,
        partitions_def=(
            time_partitions(spec.stream_id, partitions.period, partitions.start)
            if partitions
            else None
        ),
        checks=stream.checks,
    )
    jobs, schedules = [], []
    if stream.model.schedule or partitions:
        job = dg.define_asset_job(
            f"{spec.source}_{spec.name}_job", selection=[dg.AssetKey([spec.source, spec.name])]
        )
        jobs.append(job)
    if stream.model.schedule:
        schedules.append(
            stopped_schedule(f"{spec.source}_{spec.name}_schedule", jobs[0], stream.model.schedule)
        )
    return dg.Definitions(assets=[asset], jobs=jobs, schedules=schedules)


def stopped_schedule(
    name: str, job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition, cron: str
) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def check_cron(sid: str, cron: str, field_name: str = "schedule", where: str | None = None) -> None:
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except Exception as exc:
        raise DeclarationError(
            sid, field_name, f"'{cron}' is not a valid cron: {exc}", where
        ) from None
