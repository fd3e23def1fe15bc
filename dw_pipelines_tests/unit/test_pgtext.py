"""PostgreSQL text values -> Arrow: what the change stream and a snapshot both parse."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest

from dw_pipelines.sync.cdc.pgtext import days_from_civil, to_arrow
from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column

EPOCH = date(1970, 1, 1)


def parsed(column: Column, values: list[str | None]) -> tuple[list[object], list[str]]:
    said: list[str] = []
    return to_arrow(column, values, said.append).to_pylist(), said


def micros(array: pa.Array) -> list[int | None]:
    return array.cast(pa.int64()).to_pylist()


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1582, 10, 15), EPOCH, date(2000, 2, 29)])
def test_days_from_civil_agrees_with_python_where_python_reaches(day: date) -> None:
    assert days_from_civil(day.year, day.month, day.day) == (day - EPOCH).days


def test_days_from_civil_counts_years_before_christ_as_postgresql_does() -> None:
    # Differences PostgreSQL 15 computes: '0001-01-01 BC'::date - '1970-01-01', and 44 BC.
    assert days_from_civil(0, 1, 1) == -719528
    assert days_from_civil(-43, 3, 15) == -735160


def test_ordinary_timestamps_parse_in_arrow() -> None:
    values, said = parsed(Column("ts", "timestamp"), ["2026-03-01 10:00:00.123456", None])

    assert values == [datetime(2026, 3, 1, 10, 0, 0, 123456), None]
    assert said == []


def test_a_timestamptz_with_an_hour_offset_is_read_as_utc() -> None:
    values, _ = parsed(Column("t", "timestamptz"), ["2026-03-01 10:00:00.5+00"])

    assert values == [datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)]


def test_years_beyond_9999_and_before_christ_are_exact_instants() -> None:
    array = to_arrow(
        Column("ts", "timestamp"),
        ["10000-01-01 00:00:00", "0044-03-15 12:00:00.5 BC", "2026-01-01 00:00:00"],
    )

    assert micros(array) == [
        2932897 * 86_400_000_000,
        -63517780799_500000,  # extract(epoch ...) of the same value in PostgreSQL 15
        days_from_civil(2026, 1, 1) * 86_400_000_000,
    ]


def test_an_extended_timestamptz_applies_its_offset() -> None:
    array = to_arrow(Column("t", "timestamptz"), ["12000-01-01 00:00:00+05"])

    assert micros(array) == [316516186800 * 1_000_000]  # extract(epoch ...) in PostgreSQL 15


def test_extended_dates_are_exact_days() -> None:
    array = to_arrow(Column("d", "date"), ["10000-01-01", "0001-01-01 BC", "2026-03-01"])

    assert array.cast(pa.int32()).to_pylist() == [2932897, -719528, (date(2026, 3, 1) - EPOCH).days]


@pytest.mark.parametrize("kind", ["date", "timestamp", "timestamptz"])
def test_infinities_are_null_and_counted(kind: str) -> None:
    values, said = parsed(Column("v", kind), ["infinity", "-infinity", "infinity", None])  # type: ignore[arg-type]

    assert values == [None, None, None, None]
    assert said == [
        f"column 'v': 3 value(s) that {kind} cannot hold stored as NULL"
        " (1 × -infinity, 2 × infinity)"
    ]


def test_a_timestamp_beyond_64_bit_microseconds_is_null_and_counted() -> None:
    values, said = parsed(Column("ts", "timestamp"), ["294276-12-31 23:59:59.999999"])

    assert values == [None]
    assert said == [
        "column 'ts': 1 value(s) that timestamp cannot hold stored as NULL"
        " (1 × beyond the type's range)"
    ]


def test_numeric_nan_and_infinities_are_null_and_counted() -> None:
    column = Column("n", "decimal", precision=12, scale=2)
    values, said = parsed(column, ["1.25", "NaN", "Infinity", "-Infinity", None])

    assert values == [Decimal("1.25"), None, None, None, None]
    assert said == [
        "column 'n': 3 value(s) that decimal(12,2) cannot hold stored as NULL"
        " (1 × -Infinity, 1 × Infinity, 1 × NaN)"
    ]


def test_float_nan_and_infinities_are_kept() -> None:
    values, said = parsed(Column("f", "float64"), ["NaN", "Infinity", "-Infinity"])

    assert [str(v) for v in values] == ["nan", "inf", "-inf"]
    assert said == []


def test_24_00_00_is_the_end_of_the_day() -> None:
    array = to_arrow(Column("t", "time"), ["24:00:00", "23:59:59.5", None])

    assert array.cast(pa.int64()).to_pylist() == [86_400_000_000, 86_399_500_000, None]
    assert array[1].as_py() == time(23, 59, 59, 500000)


def test_a_value_that_does_not_fit_fails_naming_the_column_and_type() -> None:
    with pytest.raises(DataConversionError, match=r"column 'n': .* decimal\(4,2\)"):
        to_arrow(Column("n", "decimal", precision=4, scale=2), ["123.456"])


def test_text_without_a_warning_receiver_still_parses() -> None:
    assert to_arrow(Column("d", "date"), ["infinity"]).to_pylist() == [None]
