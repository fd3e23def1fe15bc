"""Cursor arithmetic and the state's JSON, old shape included: pure, no server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.state import (
    CdcPosition,
    CursorPosition,
    FilesPosition,
    StreamState,
    cursor_text,
    decode_cursor,
    encode_cursor,
    parse_cursor_text,
    subtract_lookback,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "lookback", "expected"),
    [
        (T0, timedelta(hours=2), T0 - timedelta(hours=2)),
        (date(2026, 11, 2), timedelta(days=3, hours=5), date(2026, 10, 30)),
        (100, 7, 93),
        (Decimal("10.5"), 2, Decimal("8.5")),
        (T0, None, T0),
        (42, 0, 42),
    ],
)
def test_a_lookback_moves_the_cursor_back_by_its_own_unit(value, lookback, expected) -> None:
    assert subtract_lookback(value, lookback) == expected


def test_a_lookback_of_the_wrong_kind_is_refused_naming_both() -> None:
    with pytest.raises(TypeError, match=r"timedelta.*'100'"):
        subtract_lookback(100, timedelta(days=1))


@pytest.mark.parametrize(
    ("text", "column_type", "expected"),
    [
        ("17", "int64", 17),
        ("1.25", "decimal", Decimal("1.25")),
        ("2026-11-02T12:00:00", "timestamptz", T0),
        ("2026-11-02T12:00:00", "timestamp", datetime(2026, 11, 2, 12, 0)),
        ("2026-11-02", "date", date(2026, 11, 2)),
        ("abc", "string", "abc"),
    ],
)
def test_cursor_text_is_typed_by_its_column(text, column_type, expected) -> None:
    parsed = parse_cursor_text(text, column_type)
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize(
    "value", [None, 5, "k", Decimal("1.10"), T0, datetime(2026, 1, 1), date(2026, 1, 1)]
)
def test_every_cursor_type_survives_json(value) -> None:
    decoded = decode_cursor(json.loads(json.dumps(encode_cursor(value))))
    assert decoded == value and type(decoded) is type(value)


def test_cursor_text_is_iso_for_dates_and_empty_for_none() -> None:
    assert (cursor_text(T0), cursor_text(None), cursor_text(3)) == (T0.isoformat(), "", "3")


@pytest.mark.parametrize(
    "position",
    [
        CursorPosition(T0),
        FilesPosition("in/2026/11/02/a.csv", T0.isoformat()),
        CdcPosition(0x16B374D848, "dw_app", 0x16B0000000),
        None,
    ],
)
def test_each_kind_of_position_survives_the_state_row(position) -> None:
    state = StreamState(position, (Column("id", "int64"),), "fp", 3)
    assert StreamState.from_json(state.to_json()) == state


def test_only_a_cursor_position_has_a_cursor() -> None:
    assert StreamState(CursorPosition(7)).cursor == 7
    assert StreamState(FilesPosition("a", "")).cursor is None


def old_row(cursor=None, extra=None) -> str:
    """A state row as warehouses written before positions were typed hold it."""
    return json.dumps(
        {
            "cursor": cursor,
            "columns": [Column("id", "int64").to_dict()],
            "schema_fingerprint": "fp",
            "row_count": 9,
            "extra": extra or {},
        }
    )


def test_an_old_cursor_state_is_read_as_a_cursor_position() -> None:
    state = StreamState.from_json(old_row(cursor={"datetime": T0.isoformat()}))
    assert (state.position, state.row_count, state.columns) == (
        CursorPosition(T0),
        9,
        (Column("id", "int64"),),
    )


def test_an_old_file_stream_state_is_read_as_a_files_position() -> None:
    row = old_row(extra={"last_object": "in/b.csv", "last_modified": T0.isoformat()})
    assert StreamState.from_json(row).position == FilesPosition("in/b.csv", T0.isoformat())


def test_an_old_cdc_table_state_is_read_with_its_snapshot_lsn() -> None:
    row = old_row(extra={"cdc": {"slot": "dw_app", "snapshot_lsn": 4096, "lsn": "0/2000"}})
    assert StreamState.from_json(row).position == CdcPosition(0x2000, "dw_app", 4096)


def test_an_old_cdc_source_state_is_read_with_its_lsn() -> None:
    row = old_row(extra={"lsn": 8192, "lsn_text": "0/2000", "slot": "dw_app"})
    assert StreamState.from_json(row).position == CdcPosition(8192, "dw_app")


def test_an_old_state_without_a_position_has_none() -> None:
    assert StreamState.from_json(old_row()).position is None
