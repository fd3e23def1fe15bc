"""JSON records to Arrow columns: a column Arrow builds in one call holds exactly what the value
by value conversion gives, and what does not convert is refused the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.sources.rest.config import Endpoint
from dw_pipelines.sync.sources.rest.records import BatchBuilder, column_array, convert, to_batch

CASES = [
    ("string", ["a", None, "é"]),
    ("string", ["a", 7, {"k": 1}]),  # not text: written as JSON text
    ("int64", [1, None, 2**40]),
    ("int64", [1, True, 2.0, "42"]),  # a bool, an integral float, digits: converted one by one
    ("float64", [1, 2.5, None]),
    ("boolean", [True, None, False]),
    ("boolean", [True, "false", 1]),
    ("json", [{"b": 1, "a": [1, "é"]}, None, "text"]),
    ("timestamptz", [1_767_225_600, None, 1_767_225_601]),
    ("timestamptz", [1_767_225_600, "2026-01-01T00:00:01Z"]),
    ("timestamp", [1_767_225_600, None]),
]


@pytest.mark.parametrize(("kind", "values"), CASES)
def test_a_column_holds_what_converting_each_value_gives(kind: str, values: list[Any]) -> None:
    column = Column("c", kind)  # type: ignore[arg-type]
    one_by_one = pa.array([convert(column, v) for v in values], column.arrow_type())

    assert column_array(column, values).equals(one_by_one)


def test_epoch_seconds_become_utc_instants() -> None:
    array = column_array(Column("created", "timestamptz"), [1_767_225_600])

    assert array.to_pylist() == [datetime(2026, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize("value", [2.5, 2**70])
def test_a_value_an_integer_column_cannot_hold_is_refused_naming_the_column(value: Any) -> None:
    endpoint = Endpoint(path="/v1/things")

    with pytest.raises(DataConversionError, match="column 'n' \\(int64\\)"):
        to_batch([Column("n", "int64")], [{"n": 1}, {"n": value}], endpoint)


def test_flattened_paths_and_top_level_keys_fill_one_batch() -> None:
    endpoint = Endpoint(path="/v1/charges", flatten={"order_id": "metadata.order_id"})
    columns = [Column("id", "string"), Column("order_id", "int64"), Column("amount", "int64")]
    records = [
        {"id": "ch_1", "amount": 500, "metadata": {"order_id": "7"}},
        {"id": "ch_2", "metadata": {}},
    ]

    batch = to_batch(columns, records, endpoint)

    assert batch.to_pylist() == [
        {"id": "ch_1", "order_id": 7, "amount": 500},
        {"id": "ch_2", "order_id": None, "amount": None},
    ]


def test_pages_built_into_one_batch_hold_what_one_conversion_of_all_their_records_gives() -> None:
    endpoint = Endpoint(path="/v1/charges", flatten={"order_id": "metadata.order_id"})
    columns = [
        Column("id", "string"),
        Column("amount", "int64"),  # an int on one page, digits on the next: converted
        Column("order_id", "int64"),
        Column("created", "timestamptz"),
        Column("card", "json"),
    ]
    pages = [
        [{"id": "ch_1", "amount": 500, "metadata": {"order_id": 7}, "created": 1_767_225_600}],
        [
            {"id": "ch_2", "amount": "42", "card": {"brand": "visa", "last4": "é"}},
            {"id": "ch_3", "created": "2026-01-01T00:00:02Z", "card": [1, 2**70]},
        ],
    ]
    builder = BatchBuilder(columns, endpoint)
    for page in pages:
        builder.add(page)

    batch = builder.build()

    assert batch.equals(to_batch(columns, [r for page in pages for r in page], endpoint))
    assert batch.column("card").to_pylist() == [
        None,
        '{"brand":"visa","last4":"é"}',
        f"[1,{2**70}]",
    ]
    assert batch.column("amount").to_pylist() == [500, 42, None]
    assert builder.rows == 0  # emptied for the next batch
