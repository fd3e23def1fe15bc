"""What a file stream is: objects under a bucket prefix, one format, one warehouse table."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from dw_pipelines.sync.spec import DeclarationError, SchemaPolicy, TableLayout, default_name

SOURCE_FILE = "_dw_source_file"
SOURCE_MODIFIED = "_dw_source_modified"


class FileFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class Layout(StrEnum):
    FILES = "files"  # every object is a file of rows
    CUR2 = "cur2"  # AWS Cost and Usage Report 2.0 (Data Exports): Parquet + manifest
    CUR_LEGACY = "cur_legacy"  # legacy AWS CUR: CSV.gz assemblies + manifest


class Partitioning(StrEnum):
    NONE = "none"
    MODIFIED_DATE = "modified_date"  # the UTC date of the object's LastModified
    KEY_DATE = "key_date"  # a date written in the key, e.g. .../2026/11/30/...


COMPRESSIONS = {"gzip": (".gz", ".gzip"), "zstd": (".zst", ".zstd")}
_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.TSV,
    ".txt": FileFormat.CSV,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str | None = None  # default: ',' for csv, tab for tsv
    header: bool = True
    column_names: tuple[str, ...] | None = None  # when the files have no header
    quote_char: str = '"'
    null_values: tuple[str, ...] = ("",)
    encoding: str = "utf-8"


@dataclass(frozen=True)
class FileStreamSpec:
    """Objects `s3://bucket/prefix...` matching `glob`, loaded into `<source>.<name>`."""

    source: str
    name: str
    bucket: str
    prefix: str = ""
    glob: str = "*"
    format: FileFormat | None = None  # None: from each key's extension
    compression: str = "auto"  # auto (from the key), gzip, zstd, none
    csv: CsvOptions = field(default_factory=CsvOptions)
    column_types: dict[str, str] = field(default_factory=dict)  # overrides of inferred types
    primary_key: tuple[str, ...] = ()
    mode: str = "append"  # append: every row of every file; merge: one row per key
    on_rewrite: str = "replace"  # an object rewritten with a new ETag: replace its rows, or ignore
    max_bad_rows: int = 0  # malformed CSV rows a file may hold (recorded) before it is rejected
    partitioning: Partitioning = Partitioning.NONE
    key_date_pattern: str = r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})"
    # freeze: every file has exactly the stream's columns; evolve: new columns are added and
    # missing ones are NULL. CUR layouts default to evolve (AWS adds tag columns over time).
    schema_policy: SchemaPolicy | None = None
    layout: Layout = Layout.FILES
    table_layout: TableLayout | None = None  # the warehouse table's partitioning (BigQuery)

    def __post_init__(self) -> None:
        if self.format is not None:
            object.__setattr__(self, "format", FileFormat(self.format))
        object.__setattr__(self, "partitioning", Partitioning(self.partitioning))
        object.__setattr__(self, "layout", Layout(self.layout))
        if self.schema_policy is None:
            policy = SchemaPolicy.FREEZE if self.layout is Layout.FILES else SchemaPolicy.EVOLVE
            object.__setattr__(self, "schema_policy", policy)
        object.__setattr__(self, "schema_policy", SchemaPolicy(self.schema_policy))
        object.__setattr__(self, "primary_key", tuple(self.primary_key))
        if not self.name:
            object.__setattr__(self, "name", default_name(self.prefix.rstrip("/") or self.bucket))

    @property
    def stream_id(self) -> str:
        return f"{self.source}.{self.name}"

    @property
    def deletes(self) -> str:
        """A rewritten object's rows are deleted, never marked: every row held is live."""
        return "hard"

    def validate(self) -> None:
        sid = self.stream_id
        if not self.bucket:
            raise DeclarationError(sid, "bucket", "must name a bucket")
        if self.mode not in ("append", "merge"):
            raise DeclarationError(sid, "mode", f"must be 'append' or 'merge', not {self.mode!r}")
        if self.mode == "merge" and not self.primary_key:
            raise DeclarationError(sid, "primary_key", "is required for mode merge")
        if self.on_rewrite not in ("replace", "ignore"):
            raise DeclarationError(
                sid, "on_rewrite", f"must be 'replace' or 'ignore', not {self.on_rewrite!r}"
            )
        if self.compression not in ("auto", "none", *COMPRESSIONS):
            raise DeclarationError(
                sid, "compression", f"must be auto, none, gzip or zstd, not {self.compression!r}"
            )
        if self.schema_policy is SchemaPolicy.ADD_COLUMNS:
            raise DeclarationError(sid, "schema_policy", "file streams use freeze or evolve")
        if self.layout is not Layout.FILES and (
            self.mode != "append" or self.partitioning is not Partitioning.NONE
        ):
            raise DeclarationError(
                sid,
                "layout",
                "CUR layouts load whole billing periods: mode append, no partitioning",
            )
        if self.max_bad_rows < 0:
            raise DeclarationError(sid, "max_bad_rows", "must not be negative")
        if self.csv.column_names is None and not self.csv.header:
            raise DeclarationError(sid, "csv.column_names", "is required when header is false")
        try:
            pattern = re.compile(self.key_date_pattern)
        except re.error as exc:
            raise DeclarationError(sid, "key_date_pattern", f"is not a regex: {exc}") from None
        if self.partitioning is Partitioning.KEY_DATE and pattern.groups != 3:
            raise DeclarationError(
                sid, "key_date_pattern", "needs three groups: year, month and day"
            )

    # -- objects ------------------------------------------------------------------------------

    def matches(self, key: str) -> bool:
        """The key is under the prefix and its remainder matches the glob."""
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False
        return fnmatch.fnmatchcase(key[len(self.prefix) :], self.glob)

    def format_of(self, key: str) -> FileFormat:
        if self.format is not None:
            return self.format
        stem = _strip_compression(key.lower())
        for extension, fmt in _EXTENSIONS.items():
            if stem.endswith(extension):
                return fmt
        raise ValueError(f"cannot tell the format of '{key}' from its name; set `format`")

    def compression_of(self, key: str) -> str | None:
        if self.compression != "auto":
            return None if self.compression == "none" else self.compression
        lowered = key.lower()
        for codec, suffixes in COMPRESSIONS.items():
            if lowered.endswith(suffixes):
                return codec
        return None

    def partition_of(self, key: str, last_modified: datetime) -> date | None:
        """The daily partition an object belongs to (None when not partitioned or no date)."""
        if self.partitioning is Partitioning.MODIFIED_DATE:
            return last_modified.date()
        if self.partitioning is Partitioning.KEY_DATE:
            match = re.search(self.key_date_pattern, key[len(self.prefix) :])
            if match is None:
                return None
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None
        return None


def _strip_compression(key: str) -> str:
    for suffixes in COMPRESSIONS.values():
        for suffix in suffixes:
            if key.endswith(suffix):
                return key[: -len(suffix)]
    return key
