"""JSON records -> typed Arrow batches: the declared columns and types first, then the ones
inferred from the records' top-level keys; nested objects and lists as JSON text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pyarrow as pa

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column, LogicalType, arrow_schema
from dw_pipelines.sync.sources.rest.config import _DECIMAL, Endpoint, type_problem
from dw_pipelines.sync.spec import DeclarationError


def parse_type(name: str, label: str, where: str) -> Column:
    """A declared `name: type` as a column; DeclarationError for a type the engine lacks."""
    problem = type_problem(label)
    if problem:
        raise DeclarationError(where, f"columns.{name}", problem)
    match = _DECIMAL.match(label.strip())
    if match:
        return Column(name, "decimal", True, int(match[1]), int(match[2]))
    return Column(name, label)  # type: ignore[arg-type]


def path_get(value: Any, path: str) -> Any:
    """`a.b.c` of nested dicts; None where a step is missing. An empty path is the value."""
    for step in path.split(".") if path else ():
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def infer_type(values: Iterable[Any]) -> LogicalType:
    seen: set[LogicalType] = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            seen.add("boolean")
        elif isinstance(v, int):
            seen.add("int64")
        elif isinstance(v, float):
            seen.add("float64")
        elif isinstance(v, str):
            seen.add("string")
        else:
            seen.add("json")
    if seen <= {"int64", "float64"} and seen:
        return "float64" if "float64" in seen else "int64"
    if len(seen) == 1:
        return seen.pop()
    return "json" if seen else "string"


def endpoint_columns(
    endpoint: Endpoint, sample: Sequence[Mapping[str, Any]], where: str
) -> list[Column]:
    """Declared columns, flattened paths, parent fields, then (if inferring) the sample's keys."""
    columns = {n: parse_type(n, t, where) for n, t in endpoint.columns.items()}
    for name, path in endpoint.flatten.items():
        if name not in columns:
            columns[name] = Column(name, infer_type(path_get(r, path) for r in sample))
    for name in endpoint.parent_fields:
        columns.setdefault(name, Column(name, "string"))
    if endpoint.infer_columns:
        for record in sample:
            for key in record:
                if key not in columns:
                    columns[key] = Column(key, infer_type(r.get(key) for r in sample))
    return list(columns.values())


class BatchBuilder:
    """Records to one Arrow batch, page by page.

    Each page is converted when it is added, while its records are still in the CPU's cache:
    measured on Stripe-like charges, converting 10,000 records at once costs twice as much. Only
    Arrow data is held between pages (keeping the pages' Python values instead was a little
    faster but pinned the parsed pages' memory: 100 MiB more at peak)."""

    def __init__(self, columns: Sequence[Column], endpoint: Endpoint) -> None:
        self.columns, self.endpoint = list(columns), endpoint
        self._pages: list[pa.RecordBatch] = []
        self.rows = 0

    def add(self, records: Sequence[Mapping[str, Any]]) -> None:
        if records:
            self._pages.append(to_batch(self.columns, records, self.endpoint))
            self.rows += len(records)

    def build(self) -> pa.RecordBatch:
        """The records added since the last build, as one batch (and the builder emptied)."""
        if not self._pages:
            return to_batch(self.columns, [], self.endpoint)
        batch = pa.concat_batches(self._pages)
        self._pages, self.rows = [], 0
        return batch


def to_batch(
    columns: Sequence[Column], records: Sequence[Mapping[str, Any]], endpoint: Endpoint
) -> pa.RecordBatch:
    plain = all(type(r) is dict for r in records)
    arrays = []
    for column in columns:
        values = _take(records, endpoint.flatten.get(column.name, column.name), plain)
        try:
            arrays.append(column_array(column, values))
        except (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            ValueError,
            TypeError,
            OverflowError,
            InvalidOperation,
        ) as e:
            raise DataConversionError(
                f"column '{column.name}' ({column.type_label}): a value does not convert: {e}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(list(columns)))


def _take(records: Sequence[Mapping[str, Any]], path: str, plain: bool) -> list[Any]:
    """Each record's value at `path` (None where missing)."""
    if not plain:
        return [path_get(r, path) for r in records]
    if "." not in path:
        return [r.get(path) for r in records]
    # A step at a time over the whole page: no Python call per record.
    first, *rest = path.split(".")
    values = [r.get(first) for r in records]
    for step in rest:
        values = [v.get(step) if type(v) is dict else None for v in values]
    return values


# The JSON types Arrow takes as they are for a column type, giving what `convert` would: a
# column whose values all have one of them is built by Arrow in one call, not value by value.
_NONE = type(None)
_NATIVE: dict[str, set[type]] = {
    "string": {str, _NONE},
    "uuid": {str, _NONE},
    "boolean": {bool, _NONE},
    "int16": {int, _NONE},
    "int32": {int, _NONE},
    "int64": {int, _NONE},
    "float32": {int, float, _NONE},
    "float64": {int, float, _NONE},
}
_EPOCH = {int, _NONE}


def json_text(value: Any) -> str | bytes:
    """A JSON value as compact JSON text with its keys sorted (UTF-8 bytes, which Arrow takes
    for a string column, or text): orjson writes it about six times faster than `json.dumps`,
    which matters for an API whose records nest a few objects each."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # What orjson refuses, integers past 64 bits: the standard library writes them.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def column_array(column: Column, values: list[Any]) -> pa.Array:
    """The column's JSON values as an Arrow array, as `convert` makes each value (exact types
    are checked, so a bool is never taken for an int nor 2.5 truncated)."""
    kind, arrow_type = column.type, column.arrow_type()
    if kind == "json":
        # Built as binary and cast once: Arrow takes a list of bytes for a string column about
        # fifty times slower than for a binary one, checking each value's UTF-8 on its own.
        texts = [None if v is None else json_text(v) for v in values]
        if all(type(t) is bytes or t is None for t in texts):
            return pa.array(texts, pa.binary()).cast(arrow_type)
        return pa.array([t.decode() if type(t) is bytes else t for t in texts], arrow_type)
    types = set(map(type, values))
    native = _NATIVE.get(kind)
    if native is not None and types <= native:
        return pa.array(values, arrow_type)
    if kind in ("timestamptz", "timestamp") and types <= _EPOCH:
        # Epoch seconds (Stripe's `created`), converted by Arrow
        seconds = pa.array(values, pa.int64())
        unit = pa.timestamp("s", tz="UTC" if kind == "timestamptz" else None)
        return seconds.cast(unit).cast(arrow_type)
    return pa.array([convert(column, v) for v in values], arrow_type)


def convert(column: Column, value: Any) -> Any:
    """One JSON value as the Python value Arrow takes for the column's type."""
    if value is None:
        return None
    kind = column.type
    if kind == "json":
        text = json_text(value)
        return text.decode() if isinstance(text, bytes) else text
    if kind in ("string", "uuid"):
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if kind == "boolean":
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)
    if kind in ("int16", "int32", "int64"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if kind in ("float32", "float64"):
        return float(value)
    if kind == "decimal":
        return Decimal(str(value))
    if kind in ("timestamptz", "timestamp"):
        moment = to_datetime(value)
        return moment if kind == "timestamptz" else moment.replace(tzinfo=None)
    if kind == "date":
        return date.fromisoformat(str(value)[:10])
    return value


def to_datetime(value: Any) -> datetime:
    """Epoch seconds (Stripe's `created`) or ISO 8601 text, as an aware UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / (1000 if len(text) > 11 else 1), UTC)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
