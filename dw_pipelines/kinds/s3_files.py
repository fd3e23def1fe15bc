"""S3 files: a bucket store whose streams are prefixes of objects, each loaded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.ingest.files import FileStreamSettings, build_file_stream_defs
from dw_pipelines.kinds.base import SourceKind, SourceModel, Spec, Stream
from dw_pipelines.resources.s3 import S3Resource, S3Settings
from dw_pipelines.sync.files.formats import check_type_labels
from dw_pipelines.sync.files.spec import CsvOptions, FileStreamSpec
from dw_pipelines.sync.spec import DeclarationError, parse_duration

if TYPE_CHECKING:
    from dw_pipelines.kinds.streams import StreamModel


class S3SourceModel(SourceModel):
    type: Literal["s3"]
    s3: S3Settings | None = None
    """The store's settings."""


class CsvModel(dg.Model):
    delimiter: str | None = None
    """Default `,` (tab for tsv)."""
    header: bool = True
    column_names: list[str] | None = None
    """Required when `header: false`."""
    quote_char: str = '"'
    null_values: list[str] = [""]
    encoding: str = "utf-8"


class FilesModel(dg.Model):
    """An `s3` source's stream: the objects under a prefix, loaded once each."""

    bucket: str
    prefix: str = ""
    glob: str = "*"
    """Matched against the key after the prefix (`*` crosses `/`)."""
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    """Default: from each key's extension."""
    compression: Literal["auto", "gzip", "zstd", "none"] = "auto"
    csv: CsvModel = CsvModel()
    column_types: dict[str, str] = {}
    """Overrides of inferred types, e.g. `amount: decimal(12,2)`, `ts: timestamptz`."""
    layout: Literal["files", "cur2", "cur_legacy"] = "files"
    """`cur2` / `cur_legacy`: an AWS Cost and Usage Report export, loaded by its manifests."""
    mode: Literal["append", "merge"] = "append"
    schema_policy: Literal["freeze", "evolve"] | None = None
    """freeze (default): every file has the stream's columns; evolve (CUR default): new columns
    are added, missing ones are NULL."""
    on_rewrite: Literal["replace", "ignore"] = "replace"
    max_bad_rows: int = 0
    partitioning: Literal["none", "modified_date", "key_date"] = "none"
    key_date_pattern: str = r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})"
    start_date: str = "2024-01-01"
    sensor_interval_seconds: int = 60
    max_files_per_run: int = 500
    max_runs_per_tick: int = 10
    lookback: str = "1 hour"

    def to_settings(self) -> FileStreamSettings:
        return FileStreamSettings(
            sensor_interval_s=self.sensor_interval_seconds,
            max_files_per_run=self.max_files_per_run,
            max_runs_per_tick=self.max_runs_per_tick,
            lookback=parse_duration(self.lookback),
            start_date=self.start_date,
        )

    def to_spec(self, source: str, name: str, primary_key: list[str]) -> FileStreamSpec:
        return FileStreamSpec(
            source=source,
            name=name,
            bucket=self.bucket,
            prefix=self.prefix,
            glob=self.glob,
            format=self.format,  # type: ignore[arg-type]
            compression=self.compression,
            csv=CsvOptions(
                delimiter=self.csv.delimiter,
                header=self.csv.header,
                column_names=tuple(self.csv.column_names) if self.csv.column_names else None,
                quote_char=self.csv.quote_char,
                null_values=tuple(self.csv.null_values),
                encoding=self.csv.encoding,
            ),
            column_types=dict(self.column_types),
            primary_key=tuple(primary_key),
            mode=self.mode,
            on_rewrite=self.on_rewrite,
            max_bad_rows=self.max_bad_rows,
            partitioning=self.partitioning,  # type: ignore[arg-type]
            key_date_pattern=self.key_date_pattern,
            layout=self.layout,  # type: ignore[arg-type]
            schema_policy=self.schema_policy,  # type: ignore[arg-type]
        )


class S3FilesKind(SourceKind):
    types = ("s3",)
    model = S3SourceModel

    def resource(self, name: str, source: SourceModel) -> S3Resource:
        assert isinstance(source, S3SourceModel)
        return S3Resource(name=name, **dict(source.s3 or S3Settings()))

    def spec(self, name: str, source: SourceModel, stream: StreamModel) -> Spec:
        sid = stream.stream_label
        if stream.files is None or stream.object:
            raise DeclarationError(
                sid, "files", "an s3 source's stream declares `files:` (not `object:`)"
            )
        for field_name in ("mode", "cursor", "lookback", "columns", "schedule", "partitions"):
            if getattr(stream, field_name) not in (None, "full_refresh"):
                raise DeclarationError(
                    sid, field_name, "does not apply to file streams (see `files:`)"
                )
        spec = stream.files.to_spec(stream.source, stream.name or "", stream.primary_key)
        if stream.bigquery is not None:
            spec = replace(spec, table_layout=stream.bigquery.to_layout())
            spec.table_layout.validate(sid, None)  # type: ignore[union-attr]
        try:
            spec.validate()
            check_type_labels(spec.column_types)
            parse_duration(stream.files.lookback)
        except DeclarationError as exc:
            raise DeclarationError(sid, f"files.{exc.field_name}", exc.problem) from None
        except ValueError as exc:
            raise DeclarationError(sid, "files", str(exc)) from None
        return spec

    def build_defs(
        self, name: str, source: SourceModel, streams: Sequence[Stream]
    ) -> dg.Definitions:
        defs = []
        for stream in streams:
            assert isinstance(stream.spec, FileStreamSpec) and stream.model.files is not None
            defs.append(
                build_file_stream_defs(
                    stream.spec,
                    stream.model.files.to_settings(),
                    description=stream.model.description,
                    owners=stream.owners,
                    group=stream.model.group,
                    checks=stream.checks,
                )
            )
        return dg.Definitions.merge(*defs) if defs else dg.Definitions()
