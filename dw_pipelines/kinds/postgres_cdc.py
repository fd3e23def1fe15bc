"""Change data capture, the ability of a PostgreSQL source: its `cdc:` settings, the rules of
a `mode: cdc` stream, and the definitions of a source's CDC streams (one multi-asset)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.kinds.base import Stream
from dw_pipelines.sync.spec import DeclarationError, StreamSpec, parse_duration

if TYPE_CHECKING:
    from dw_pipelines.ingest.cdc import CdcSettings
    from dw_pipelines.kinds.streams import StreamModel


class CdcModel(dg.Model):
    """Change data capture settings of a PostgreSQL source (used by its `mode: cdc` streams)."""

    slot: str | None = None
    """Replication slot name; default `dw_<source>`."""
    publication: str | None = None
    """Publication name; default `dw_<source>`."""
    sensor_interval_seconds: int = 30
    batch_changes: int = 50_000
    commit_interval_seconds: float = 5.0
    advance_after_bytes: int = 16 << 20
    lag_warn_bytes: int = 256 << 20
    lag_fail_bytes: int = 1 << 30
    lag_warn_age: str = "15 minutes"
    lag_fail_age: str = "1 hour"

    def to_settings(self) -> CdcSettings:
        # CDC (psycopg2, the runner) is loaded only by catalogs that declare CDC streams.
        from dw_pipelines.ingest.cdc import CdcSettings
        from dw_pipelines.sync.cdc.runner import CdcOptions

        return CdcSettings(
            options=CdcOptions(
                slot=self.slot,
                publication=self.publication,
                batch_changes=self.batch_changes,
                commit_interval_s=self.commit_interval_seconds,
            ),
            sensor_interval_s=self.sensor_interval_seconds,
            advance_after_bytes=self.advance_after_bytes,
            lag_warn_bytes=self.lag_warn_bytes,
            lag_fail_bytes=self.lag_fail_bytes,
            lag_warn_age=parse_duration(self.lag_warn_age),
            lag_fail_age=parse_duration(self.lag_fail_age),
        )


def check_cdc_stream(
    source_name: str, source_type: str, cdc: CdcModel | None, stream: StreamModel
) -> None:
    """A `mode: cdc` entry: a PostgreSQL source, no schedule of its own, valid lag ages."""
    sid = stream.stream_label
    if source_type != "postgres":
        raise DeclarationError(
            sid, "mode", f"cdc needs a postgres source; '{source_name}' is {source_type}"
        )
    if stream.schedule:
        raise DeclarationError(
            sid,
            "schedule",
            f"cdc streams run together per source: use the {source_name}_cdc_sensor",
        )
    for field_name in ("lag_warn_age", "lag_fail_age"):
        try:
            parse_duration(getattr(cdc or CdcModel(), field_name))
        except ValueError as exc:
            raise DeclarationError(sid, f"cdc.{field_name}", str(exc)) from None


def cdc_defs(source_name: str, cdc: CdcModel | None, streams: Sequence[Stream]) -> dg.Definitions:
    from dw_pipelines.ingest.cdc import build_cdc_defs

    specs = [s.spec for s in streams]
    assert all(isinstance(spec, StreamSpec) for spec in specs)
    return build_cdc_defs(
        source_name,
        specs,  # type: ignore[arg-type]
        (cdc or CdcModel()).to_settings(),
        descriptions={s.spec.name: s.model.description for s in streams},
        owners={s.spec.name: s.owners for s in streams},
        groups={s.spec.name: s.model.group for s in streams},
        checks={s.spec.name: s.checks for s in streams},
    )
