"""PostgreSQL's text output format -> Arrow arrays of the engine's logical types.

Every session whose text we parse (the walsender, the snapshot read, the admin connection that
turns arrays into JSON) runs with the same `SESSION_SETTINGS`, so each type has exactly one
text form, whatever the server's or the role's defaults: a snapshot and the change stream
render every value, time-zone-dependent ones included, identically. Numbers are parsed by Arrow
(numerics exactly, never through float); the few types Arrow cannot parse from text (time,
bytea) go through Python one value at a time.

PostgreSQL allows values Python's and Arrow's types do not. Those that are real instants land
exactly: years beyond 9999 and before Christ, `24:00:00`. Those that are not a value of the
warehouse column's type (`infinity` / `-infinity` dates and timestamps, numeric `NaN` and
`±Infinity`) land as NULL and are counted in a warning: never a wrong value, never a failure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column

# What every session we read text from must use, for the text forms parsed below.
SESSION_SETTINGS = {
    "DateStyle": "ISO",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "IntervalStyle": "postgres",
}
SESSION_OPTIONS = " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS.items())

# Types a snapshot reads as text too, so that both paths parse them with the code below.
TEXT_PARSED = frozenset({"decimal", "date", "time", "timestamp", "timestamptz"})

Warn = Callable[[str], None]

_ARROW_PARSED = {"int16", "int32", "int64", "float32", "float64"}
_NOT_NUMBERS = ["NaN", "Infinity", "-Infinity"]
_TEMPORAL = {"date", "timestamp", "timestamptz"}
_DAY_US = 86_400_000_000
_INT64 = 1 << 63
# 'YYYY..-MM-DD[ HH:MM:SS[.ffffff]][+HH[:MM[:SS]]][ BC]', as DateStyle=ISO prints it.
_EXTENDED = re.compile(
    r"(\d+)-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
    r"(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?"
)


def to_arrow(
    column: Column, values: Sequence[str | None] | pa.Array, warn: Warn | None = None
) -> pa.Array:
    """Parse one column's text values; a value that does not fit fails naming the column.

    Values the column's type cannot hold are NULL, counted in one message to `warn`."""
    target = column.arrow_type()
    text = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    try:
        if column.type in ("string", "json", "uuid"):
            return text
        if column.type in _ARROW_PARSED:
            return text.cast(target)
        if column.type == "decimal":
            text, dropped = _without(text, pc.is_in(text, pa.array(_NOT_NUMBERS)))
            _report(column, dropped, warn)
            return text.cast(target)
        if column.type in _TEMPORAL:
            return _temporal(column, text, warn)
        if column.type == "boolean":
            return pc.equal(text, "t")
        if column.type == "time":
            return pa.array([None if v is None else _time_us(v) for v in text.to_pylist()], target)
        if column.type == "binary":
            return pa.array(
                [None if v is None else bytes.fromhex(v[2:]) for v in text.to_pylist()],
                pa.binary(),
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise DataConversionError(
            f"column '{column.name}': source values do not fit {column.type_label}: {exc}"
        ) from None
    raise DataConversionError(f"column '{column.name}': unsupported type {column.type_label}")


def _without(text: pa.Array, mask: pa.Array) -> tuple[pa.Array, Counter[str]]:
    """`text` with the masked values NULL, and how many of each were dropped."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return text, Counter()
    dropped = Counter(pc.filter(text, mask).to_pylist())
    return pc.if_else(mask, pa.scalar(None, pa.string()), text), dropped


def _report(column: Column, dropped: Counter[str], warn: Warn | None) -> None:
    if dropped and warn is not None:
        what = ", ".join(f"{n} × {value}" for value, n in sorted(dropped.items()))
        warn(
            f"column '{column.name}': {sum(dropped.values())} value(s) that"
            f" {column.type_label} cannot hold stored as NULL ({what})"
        )


def _temporal(column: Column, text: pa.Array, warn: Warn | None) -> pa.Array:
    # Four-digit years AD, nearly every value, parse in Arrow; the rest one at a time.
    odd = pc.fill_null(
        pc.or_(pc.invert(pc.match_substring_regex(text, r"^\d{4}-")), pc.ends_with(text, " BC")),
        False,
    )
    if not pc.any(odd).as_py():
        return _arrow_temporal(column, text)
    plain = _arrow_temporal(column, pc.if_else(odd, pa.scalar(None, pa.string()), text))
    dropped: Counter[str] = Counter()
    extended: list[int | None] = []
    for value, is_odd in zip(text.to_pylist(), odd.to_pylist(), strict=True):
        number = _extended(column, value) if is_odd else None
        if is_odd and number is None:
            dropped[value if "infinity" in value else "beyond the type's range"] += 1
        extended.append(number)
    _report(column, dropped, warn)
    return pc.if_else(odd, pa.array(extended, column.arrow_type()), plain)


def _arrow_temporal(column: Column, text: pa.Array) -> pa.Array:
    if column.type == "timestamptz":
        # '2024-05-01 10:00:00.5+00': Arrow's ISO 8601 parser wants a full '+HH:MM' offset.
        text = pc.replace_substring_regex(text, r"([+-]\d\d)$", r"\1:00")
    return text.cast(column.arrow_type())


def _extended(column: Column, value: str) -> int | None:
    """Days (date) or microseconds (timestamps) since 1970 of a value outside years 1000-9999;
    None for ±infinity and instants beyond what 64-bit microseconds hold."""
    match = _EXTENDED.fullmatch(value)
    if match is None:
        if "infinity" in value:
            return None
        raise ValueError(f"unexpected {column.type} text {value!r}")
    year, month, day, hh, mi, ss, frac, sign, oh, om, os_, bc = match.groups()
    # Astronomical years, as PostgreSQL's proleptic Gregorian calendar counts: 1 BC is year 0.
    days = days_from_civil(1 - int(year) if bc else int(year), int(month), int(day))
    if column.type == "date":
        return days
    seconds = days * 86_400 + int(hh or 0) * 3_600 + int(mi or 0) * 60 + int(ss or 0)
    if sign:
        offset = int(oh) * 3_600 + int(om or 0) * 60 + int(os_ or 0)
        seconds -= offset if sign == "+" else -offset
    micros = seconds * 1_000_000 + int((frac or "").ljust(6, "0"))
    return micros if -_INT64 < micros < _INT64 else None


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, for any year (H. Hinnant's)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _time_us(value: str) -> int:
    """'HH:MM:SS[.ffffff]' in microseconds; PostgreSQL allows '24:00:00', the end of the day."""
    hours, minutes, seconds = value.split(":")
    whole, _, frac = seconds.partition(".")
    micros = ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 1_000_000
    micros += int(frac.ljust(6, "0"))
    if not 0 <= micros <= _DAY_US:
        raise ValueError(f"time {value!r} is not within a day")
    return micros
