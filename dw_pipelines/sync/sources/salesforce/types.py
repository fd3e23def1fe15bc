"""Salesforce's field types and values as the engine's: one describe() field -> one column, and
the text form both APIs deliver (REST JSON, Bulk 2.0 CSV) -> typed Arrow arrays.

REST records are first turned into the exact text Bulk 2.0 would have sent, so a value converts
through one path whichever API read it; that is what keeps Bulk and REST loads identical.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column, LogicalType, arrow_schema
from dw_pipelines.sync.sources.salesforce_defaults import (
    CURSOR_FALLBACKS as CURSOR_FALLBACKS,  # re-exported: defined where the catalog reads it
)
from dw_pipelines.sync.state import CursorValue

# Compound fields are delivered through their components; binary content is out of scope.
SKIPPED_TYPES = {"address", "location", "base64"}
_STRING_TYPES = {
    "id", "reference", "string", "picklist", "multipicklist", "combobox", "textarea", "email",
    "url", "phone", "encryptedstring", "anyType",
}  # fmt: skip
_TYPES: dict[str, LogicalType] = {
    **dict.fromkeys(_STRING_TYPES, "string"),
    "boolean": "boolean",
    "int": "int32",
    "long": "int64",
    "date": "date",
    "datetime": "timestamptz",
    "time": "time",
    "complexvalue": "json",
    "json": "json",
}  # numeric kinds (double, currency, percent) are typed by their precision


def logical_column(f: dict[str, Any]) -> Column | None:
    """A describe() field as an engine column; None for fields a sync does not read."""
    kind, name, nullable = f["type"], f["name"], bool(f.get("nillable", True))
    if kind in SKIPPED_TYPES:
        return None
    if kind in ("double", "currency", "percent"):
        precision, scale = int(f.get("precision") or 0), int(f.get("scale") or 0)
        if 0 < precision <= 38 and scale <= precision:
            return Column(name, "decimal", nullable, precision, scale)
        return Column(name, "float64", nullable)
    # A type Salesforce adds later arrives as text.
    return Column(name, _TYPES.get(kind, "string"), nullable)


def soql_literal(value: CursorValue) -> str:
    """A cursor value as a SOQL literal (datetimes unquoted, in UTC with milliseconds)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def ceil_ms(value: CursorValue) -> CursorValue:
    """An exclusive upper bound rounded up to Salesforce's millisecond precision."""
    if isinstance(value, datetime) and value.microsecond % 1000:
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000 + 1000)
    return value


def to_arrow(columns: Sequence[Column], texts: dict[str, pa.Array]) -> pa.RecordBatch:
    """Per column, Salesforce's text form of the values -> one batch typed as `columns`."""
    arrays = []
    for column in columns:
        try:
            arrays.append(_from_text(column, texts[column.name]))
        except (pa.ArrowInvalid, ValueError) as exc:
            raise DataConversionError(
                f"column '{column.name}' ({column.type_label}): a value does not convert: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(list(columns)))


def _from_text(column: Column, text: pa.Array) -> pa.Array:
    target = column.arrow_type()
    if column.type in ("string", "json"):
        return text
    if column.type == "boolean":
        return pc.equal(text, "true")
    if column.type == "time":
        return pa.array(
            [None if v is None else dtime.fromisoformat(v.rstrip("Z")) for v in text.to_pylist()],
            target,
        )
    # Datetimes come as ...+0000 (REST) or ...Z (Bulk): Arrow reads both as UTC instants.
    return pc.cast(text, target)


def json_texts(columns: Sequence[Column], records: list[dict[str, Any]]) -> dict[str, pa.Array]:
    """REST records (parsed with Decimal floats) as the same text form Bulk 2.0 delivers."""
    return {c.name: pa.array([_text(r.get(c.name)) for r in records], pa.string()) for c in columns}


def csv_texts(columns: Sequence[Column], page: str) -> dict[str, pa.Array]:
    """One Bulk 2.0 CSV page, parsed by Arrow: every column as text, empty fields null."""
    names = [c.name for c in columns]
    if not page.strip():
        return {n: pa.array([], pa.string()) for n in names}
    table = pa_csv.read_csv(
        io.BytesIO(page.encode()),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            include_columns=names,
        ),
    )
    return {n: table.column(n).combine_chunks() for n in names}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
