"""PostgreSQL's text output format -> Arrow arrays of the engine's logical types.

The replication connection runs with `DateStyle=ISO`, `TimeZone=UTC`, `extra_float_digits=3`
and `bytea_output=hex`, so each type has exactly one text form to parse. Numbers are parsed by
Arrow (numerics exactly, never through float); the few types Arrow cannot parse from text
(time, bytea) go through Python one value at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time

import pyarrow as pa
import pyarrow.compute as pc

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column

# What the walsender session must use for the text forms parsed below.
SESSION_OPTIONS = (
    "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex"
    " -c IntervalStyle=postgres"
)

_ARROW_PARSED = {"int16", "int32", "int64", "float32", "float64", "decimal", "date", "timestamp"}


def _timestamptz(values: pa.Array) -> pa.Array:
    # '2024-05-01 10:00:00.5+00': Arrow's ISO 8601 parser wants a full '+HH:MM' offset.
    fixed = pc.replace_substring_regex(values, r"([+-]\d\d)$", r"\1:00")
    return fixed.cast(pa.timestamp("us", tz="UTC"))


def to_arrow(column: Column, values: Sequence[str | None]) -> pa.Array:
    """Parse one column's text values; a value that does not fit fails naming the column."""
    target = column.arrow_type()
    try:
        if column.type in ("string", "json", "uuid"):
            return pa.array(values, pa.string())
        text = pa.array(values, pa.string())
        if column.type in _ARROW_PARSED:
            return text.cast(target)
        if column.type == "timestamptz":
            return _timestamptz(text)
        if column.type == "boolean":
            return pc.equal(text, "t")
        if column.type == "time":
            return pa.array([None if v is None else time.fromisoformat(v) for v in values], target)
        if column.type == "binary":
            return pa.array(
                [None if v is None else bytes.fromhex(v[2:]) for v in values], pa.binary()
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise DataConversionError(
            f"column '{column.name}': source values do not fit {column.type_label}: {exc}"
        ) from None
    raise DataConversionError(f"column '{column.name}': unsupported type {column.type_label}")
