"""One object's bytes as bounded Arrow batches typed as the stream's columns.

CSV/TSV and JSON Lines are decoded incrementally from one streamed GET (through gzip or zstd
when compressed); Parquet is read row group by row group over ranged GETs. Nothing holds a
whole file. Anything wrong with the file itself raises BadFile, which quarantines it; a failure
of the storage underneath is re-raised as it is, so a network error never quarantines a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import pyarrow as pa

from dw_pipelines.sync.errors import SyncError
from dw_pipelines.sync.files.spec import SOURCE_FILE, SOURCE_MODIFIED, FileFormat, FileStreamSpec
from dw_pipelines.sync.schema import Column, decimal_column
from dw_pipelines.sync.spec import SchemaPolicy

# CSV/JSON block: types are inferred from the first one. Larger blocks let the reader run
# ahead of the warehouse (measured: 4 MiB blocks grew the pool to 150 MB; 1 MiB stays ~30 MB).
BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 64 * 1024
# Malformed CSV rows recorded for one file: enough to see every fault of a typical bad export,
# few enough that a file which is not CSV at all stops being read early.
RECORDED_BAD_ROWS = 1000


class BadFile(SyncError):
    """The file cannot be loaded as the stream declares: it is quarantined, none of its rows land."""


@dataclass(frozen=True)
class BadRow:
    line: (
        int | None
    )  # 1-based, the header included (a CSV record is one line: no newlines in values)
    error: str
    text: str


def recorded_bad_rows(allowed: int) -> int:
    """How many malformed rows a file is read for: every one up to a limit, and always one past
    `allowed`, so the decision to quarantine never rests on an unread row."""
    return max(RECORDED_BAD_ROWS, allowed + 1)


FILE_COLUMNS = [Column(SOURCE_FILE, "string", False), Column(SOURCE_MODIFIED, "timestamptz", False)]


def open_file(
    spec: FileStreamSpec,
    key: str,
    last_modified: datetime,
    columns: list[Column] | None,
    opener: Callable[[bool], BinaryIO],
    bad_rows: list[BadRow],
    hints: dict[str, str] | None = None,
) -> tuple[list[Column], pa.RecordBatchReader]:
    """(the file's columns, its batches conformed to them plus the two provenance columns).

    `columns` are the stream's (None for its first file: inferred from this one, with the
    declared overrides). `opener(random_access)` opens the object. Malformed CSV rows up to
    `spec.max_bad_rows` are skipped and appended to `bad_rows`. `hints` are type labels for
    new columns (e.g. from a manifest), below the stream's own `column_types`. Under schema
    policy `evolve` a file may bring new columns (added) and omit known ones (NULL).
    """
    types = {**(hints or {}), **spec.column_types}
    try:
        fmt = spec.format_of(key)
    except ValueError as exc:
        raise BadFile(str(exc)) from None
    guard = _Guard()
    try:
        if fmt is FileFormat.PARQUET:
            schema, batches = _parquet(guard.wrap(opener(True)))
        else:
            stream: Any = pa.PythonFile(guard.wrap(opener(False)), mode="r")
            codec = spec.compression_of(key)
            if codec:
                stream = pa.CompressedInputStream(stream, codec)
            if fmt is FileFormat.JSONL:
                schema, batches = _jsonl(stream, columns, types)
            else:
                schema, batches = _csv(spec, fmt, stream, columns, bad_rows, types)
        empty = [f.name for f in schema if pa.types.is_null(f.type) and f.name not in types]
        if columns is None and empty and fmt is not FileFormat.PARQUET:
            # Empty in the first block says nothing of the type: read such columns as text
            # (declare `column_types` for better), from the start again.
            bad_rows.clear()
            hints = {**(hints or {}), **dict.fromkeys(empty, "string")}
            return open_file(spec, key, last_modified, None, opener, bad_rows, hints)
        target = target_columns(spec, fmt, schema, columns, types)
    except Exception as exc:
        raise guard.classify(exc, bad_rows, spec.max_bad_rows) from None
    out_schema = pa.schema([pa.field(c.name, c.arrow_type()) for c in target + FILE_COLUMNS])
    expected = {c.name for c in target}
    provenance = [
        pa.scalar(value, c.arrow_type())
        for value, c in zip((key, last_modified), FILE_COLUMNS, strict=True)
    ]

    check_utf8 = fmt is FileFormat.JSONL  # the CSV reader checks text; the JSON reader does not

    def conformed() -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                if check_utf8:
                    batch.validate(full=True)
                n = batch.num_rows
                names = batch.schema.names
                if any(name not in expected for name in names):
                    _check_names(target, names, missing_ok=True)
                arrays = [
                    _conform(batch.column(c.name), c)
                    if c.name in names
                    else pa.nulls(n, c.arrow_type())
                    for c in target
                ]
                arrays += [pa.repeat(value, n) for value in provenance]
                yield pa.RecordBatch.from_arrays(arrays, schema=out_schema)
            # The whole file was read to record every bad row; only now is it judged.
            if len(bad_rows) > spec.max_bad_rows:
                raise guard.too_many(bad_rows, spec.max_bad_rows)
        except Exception as exc:
            raise guard.classify(exc, bad_rows, spec.max_bad_rows) from None

    return target, pa.RecordBatchReader.from_batches(out_schema, conformed())


def target_columns(
    spec: FileStreamSpec,
    fmt: FileFormat,
    schema: pa.Schema,
    columns: list[Column] | None,
    types: dict[str, str],
) -> list[Column]:
    """The columns this file loads into: the stream's (plus new ones under evolve), or, for the
    stream's first file, its own. BadFile when its columns do not match."""
    evolve = spec.schema_policy is SchemaPolicy.EVOLVE
    file_columns = [_overridden(types, column_for(f.name, f.type)) for f in schema]
    target = columns if columns is not None else file_columns
    if evolve and columns is not None:
        known = {c.name for c in columns}
        target = columns + [c for c in file_columns if c.name not in known]
    # A JSON record simply omits a key whose value is null: only unknown keys are wrong.
    _check_names(target, [f.name for f in schema], missing_ok=evolve or fmt is FileFormat.JSONL)
    return target


def parquet_columns(
    spec: FileStreamSpec, path: str, columns: list[Column] | None, hints: dict[str, str]
) -> tuple[list[Column], set[str]]:
    """(target columns, the names the file has) of a local Parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        # Arrow words a disk that fails like a file that is bad: ask the OS whether it can read
        # the file at all before blaming its content.
        if (failure := _unreadable(path)) is not None:
            raise failure from exc
        raise BadFile(_first_line(exc)) from None
    types = {**hints, **spec.column_types}
    return target_columns(spec, FileFormat.PARQUET, schema, columns, types), set(schema.names)


# -- formats ----------------------------------------------------------------------------------


def _csv(
    spec: FileStreamSpec,
    fmt: FileFormat,
    stream: Any,
    columns: list[Column] | None,
    bad_rows: list[BadRow],
    labels: dict[str, str],
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.csv as pcsv

    options = spec.csv
    delimiter = options.delimiter or ("\t" if fmt is FileFormat.TSV else ",")

    def on_invalid(row: Any) -> str:
        bad_rows.append(
            BadRow(
                row.number,
                f"expected {row.expected_columns} columns, got {row.actual_columns}",
                (row.text or "")[:1000],
            )
        )
        return "skip" if len(bad_rows) < recorded_bad_rows(spec.max_bad_rows) else "error"

    types = {name: _parse_label(name, label).arrow_type() for name, label in labels.items()}
    types.update({c.name: c.arrow_type() for c in columns or ()})
    reader = pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(
            block_size=BLOCK_BYTES,
            column_names=list(options.column_names) if options.column_names else None,
            # declared names replace a header line rather than read it as data
            skip_rows=1 if options.column_names and options.header else 0,
            encoding=options.encoding,
            # One thread: only then does Arrow tell the invalid-row handler the row's number.
            use_threads=False,
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=delimiter, quote_char=options.quote_char, invalid_row_handler=on_invalid
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=types,
            null_values=list(options.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return reader.schema, iter(reader)


def _jsonl(
    stream: Any, columns: list[Column] | None, labels: dict[str, str]
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.json as pjson

    declared = {name: _parse_label(name, label) for name, label in labels.items()}
    declared.update({c.name: c for c in columns or ()})
    # json columns stay out: objects and arrays are inferred, then written as JSON text.
    fields = [pa.field(n, c.arrow_type()) for n, c in declared.items() if c.type != "json"]
    explicit = pa.schema(fields) if fields else None
    reader = pjson.open_json(
        stream,
        read_options=pjson.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=pjson.ParseOptions(
            explicit_schema=explicit, unexpected_field_behavior="infer"
        ),
    )
    return reader.schema, iter(reader)


def _parquet(source: BinaryIO) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.parquet as pq

    # pre_buffer: a row group's column chunks are fetched in few coalesced reads.
    parquet = pq.ParquetFile(source, pre_buffer=True)
    return parquet.schema_arrow, parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)


# -- types ------------------------------------------------------------------------------------


def column_for(name: str, t: pa.DataType) -> Column:
    """The logical column an Arrow type maps to."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return Column(name, "boolean")
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return Column(name, "int16")
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return Column(name, "int32")
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return Column(name, "int64")
    if pa.types.is_uint64(t):
        return Column(name, "decimal", True, 20, 0)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return Column(name, "float32")
    if pa.types.is_float64(t):
        return Column(name, "float64")
    if pa.types.is_decimal(t):
        return decimal_column(name, t.precision, t.scale, True)
    if pa.types.is_date(t):
        return Column(name, "date")
    if pa.types.is_timestamp(t):
        return Column(name, "timestamptz" if t.tz else "timestamp")
    if pa.types.is_time(t):
        return Column(name, "time")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return Column(name, "binary")
    if pa.types.is_nested(t):
        return Column(name, "json")
    return Column(name, "string")


_LABEL = re.compile(r"^\s*decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$", re.IGNORECASE)
TYPE_LABELS = (
    "boolean int16 int32 int64 float32 float64 string json date time timestamp timestamptz binary"
).split()


def _parse_label(name: str, label: str) -> Column:
    match = _LABEL.match(label)
    if match:
        return decimal_column(name, int(match[1]), int(match[2]), True)
    if label.strip().lower() not in TYPE_LABELS:
        raise ValueError(
            f"column '{name}': unknown type '{label}' (use decimal(p,s) or one of"
            f" {', '.join(TYPE_LABELS)})"
        )
    return Column(name, label.strip().lower())  # type: ignore[arg-type]


def check_type_labels(column_types: dict[str, str]) -> None:
    for name, label in column_types.items():
        _parse_label(name, label)


def _overridden(labels: dict[str, str], column: Column) -> Column:
    label = labels.get(column.name)
    return _parse_label(column.name, label) if label else column


def _check_names(columns: list[Column], names: list[str], missing_ok: bool = False) -> None:
    expected = [c.name for c in columns]
    missing = [] if missing_ok else [n for n in expected if n not in names]
    extra = [n for n in names if n not in expected]
    if missing or extra or len(set(names)) != len(names):
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        if len(set(names)) != len(names):
            parts.append("a column name repeats")
        raise BadFile(f"the file's columns do not match the stream's: {'; '.join(parts)}")


def _conform(array: pa.Array | pa.ChunkedArray, column: Column) -> pa.Array:
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    target = column.arrow_type()
    if array.type == target:
        return array
    if column.type == "json" and not pa.types.is_string(array.type):
        values = [
            None if v is None else json.dumps(_plain(v), default=str, separators=(",", ":"))
            for v in array.to_pylist()
        ]
        return pa.array(values, pa.string())
    try:
        return pc.cast(array, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BadFile(
            f"column '{column.name}': values of type {array.type} do not fit {column.type_label}: {exc}"
        ) from None


def _plain(value: Any) -> Any:
    """Arrow maps come back as lists of pairs: JSON wants objects."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, tuple) and len(v) == 2 for v in value)
    ):
        return {str(k): _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- telling a bad file from a failing store -------------------------------------------------


class _Guard:
    """Remembers whether the storage stream itself failed, so only file faults quarantine."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None

    def wrap(self, raw: BinaryIO) -> BinaryIO:
        guard = self

        class Guarded:
            def __getattr__(self, name: str) -> Any:
                return getattr(raw, name)

            def read(self, *args: Any) -> bytes:
                try:
                    return raw.read(*args)
                except BaseException as exc:
                    guard.failure = exc
                    raise

            def readinto(self, buffer: Any) -> int:
                try:
                    return raw.readinto(buffer)  # type: ignore[attr-defined, no-any-return]
                except BaseException as exc:
                    guard.failure = exc
                    raise

        return Guarded()  # type: ignore[return-value]

    def classify(
        self, exc: BaseException, bad_rows: list[BadRow] | None = None, allowed: int = 0
    ) -> BaseException:
        if self.failure is not None:
            return self.failure
        if isinstance(exc, BadFile) or is_local_failure(exc):
            return exc
        if bad_rows and len(bad_rows) > allowed:
            return self.too_many(bad_rows, allowed)
        if isinstance(exc, (pa.ArrowException, OSError, ValueError, UnicodeDecodeError)):
            return BadFile(_first_line(exc))
        return exc

    @staticmethod
    def too_many(bad_rows: list[BadRow], allowed: int) -> BadFile:
        first = bad_rows[0]
        # At the recording limit the read stopped: more rows may be bad than were counted.
        count = len(bad_rows)
        counted = f"at least {count}" if count >= recorded_bad_rows(allowed) else str(count)
        where = f"line {first.line}" if first.line is not None else "first"
        return BadFile(
            f"{counted} malformed row(s), more than max_bad_rows ({allowed});"
            f" {where}: {first.error}: {first.text[:200]}"
        )


def is_local_failure(exc: BaseException) -> bool:
    """An error of this machine (disk full, I/O error, file gone), not of the file's content:
    the operating system gave it an errno, which Arrow's own format errors never carry. The
    run fails and a retry reads the file again; quarantining it would keep it out for good."""
    return isinstance(exc, OSError) and exc.errno is not None


def _unreadable(path: str) -> OSError | None:
    """The operating system's error reading the local file through, if it has one."""
    try:
        with open(path, "rb") as local:
            while local.read(1 << 20):
                pass
    except OSError as exc:
        return exc
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
