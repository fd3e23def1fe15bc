"""What the BigQuery warehouse sends, built without a server: types, MERGE, literals, the commit
script, the URL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from google.api_core import exceptions

from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.urls import BigQueryUrl, MalformedUrl, parse_bigquery_url
from dw_pipelines.sync.warehouses.bigquery import (
    BigQueryError,
    BigQueryWarehouse,
    arrow_load_type,
    column_type,
    commit_script,
    decimal_type,
    error_text,
    inline_params,
    sql_literal,
)


@pytest.mark.parametrize(
    ("precision", "scale", "expected"),
    [
        (12, 2, "NUMERIC(12, 2)"),
        (38, 9, "NUMERIC(38, 9)"),  # 29 digits before the point: NUMERIC's limit
        (30, 0, "BIGNUMERIC(30, 0)"),  # 30 before: too many for NUMERIC
        (38, 20, "BIGNUMERIC(38, 20)"),  # 20 after: too many for NUMERIC (9)
        (76, 38, "BIGNUMERIC(76, 38)"),
        (None, None, "BIGNUMERIC"),  # unconstrained numeric: the widest
    ],
)
def test_a_decimal_becomes_numeric_where_it_fits_and_bignumeric_beyond(
    precision: int | None, scale: int | None, expected: str
) -> None:
    assert decimal_type(precision, scale) == expected


@pytest.mark.parametrize(("precision", "scale"), [(77, 38), (40, 39)])
def test_a_decimal_wider_than_bignumeric_is_refused_with_its_declaration(
    precision: int, scale: int
) -> None:
    with pytest.raises(BigQueryError, match=rf"DECIMAL\({precision}, {scale}\).*BIGNUMERIC"):
        decimal_type(precision, scale)


def test_other_logical_types_map_to_bigquery_types() -> None:
    kinds = ["timestamp", "timestamptz", "json", "boolean", "binary", "date", "int32", "uuid"]

    assert [column_type(Column("c", k)) for k in kinds] == [  # type: ignore[arg-type]
        "TIMESTAMP", "TIMESTAMP", "JSON", "BOOL", "BYTES", "DATE", "INT64", "STRING",
    ]  # fmt: skip


def test_decimals_and_timestamps_are_loaded_with_exact_arrow_types() -> None:
    assert arrow_load_type(Column("c", "decimal", precision=12, scale=2)) == pa.decimal128(12, 2)
    assert arrow_load_type(Column("c", "decimal", precision=50, scale=10)) == pa.decimal256(50, 10)
    assert arrow_load_type(Column("c", "decimal")) == pa.decimal256(76, 38)
    assert arrow_load_type(Column("c", "timestamp")) == pa.timestamp("us", tz="UTC")
    assert arrow_load_type(Column("c", "json")) == pa.string()  # loaded as text, then parsed


def test_upsert_is_one_merge_on_the_keys_stamping_the_sync_time() -> None:
    columns = [Column("id", "int64"), Column("status", "string")]

    sql = BigQueryWarehouse.upsert_sql("`d`.`t`", "`d`.`s`", columns, ["id"])

    assert sql == (
        "MERGE INTO `d`.`t` t USING `d`.`s` s ON t.`id` = s.`id`"
        " WHEN MATCHED THEN UPDATE SET `id` = s.`id`, `status` = s.`status`, `_dw_synced_at` = $1"
        " WHEN NOT MATCHED THEN INSERT (`id`, `status`, `_dw_synced_at`)"
        " VALUES (s.`id`, s.`status`, $1)"
    )


def test_upsert_of_one_value_reads_only_the_stage_rows_holding_it() -> None:
    sql = BigQueryWarehouse.upsert_sql("`d`.`t`", "`d`.`s`", [Column("id", "int64")], ["id"], "p")

    assert "USING (SELECT * FROM `d`.`s` WHERE `p` = $2) s ON" in sql


def test_json_columns_are_compared_as_their_text_and_nullness() -> None:
    sql = BigQueryWarehouse.same_row_sql([Column("id", "int64"), Column("doc", "json")])

    assert sql == (
        "t.`id` IS NOT DISTINCT FROM s.`id` AND (t.`doc` IS NULL) = (s.`doc` IS NULL)"
        " AND TO_JSON_STRING(t.`doc`) IS NOT DISTINCT FROM TO_JSON_STRING(s.`doc`)"
    )


def test_append_compares_json_columns_by_their_text_never_by_json_equality() -> None:
    """BigQuery defines no `=` or IS DISTINCT FROM on JSON (the emulator does, so only this
    test would catch a bare JSON comparison): a keyless append compares the whole row."""
    columns = [Column("export_time", "timestamptz"), Column("cost", "float64"),
               Column("credits", "json")]  # fmt: skip

    sql = BigQueryWarehouse.append_missing_sql(
        "`d`.`t`", "`d`.`s`", columns, equal=["export_time"], null_safe=["cost", "credits"]
    )

    assert sql == (
        "INSERT INTO `d`.`t` (`export_time`, `cost`, `credits`, `_dw_synced_at`)"
        " SELECT s.`export_time`, s.`cost`, s.`credits`, $1 FROM `d`.`s` s"
        " WHERE NOT EXISTS (SELECT 1 FROM `d`.`t` t WHERE t.`export_time` = s.`export_time`"
        " AND t.`cost` IS NOT DISTINCT FROM s.`cost`"
        " AND (t.`credits` IS NULL) = (s.`credits` IS NULL)"
        " AND TO_JSON_STRING(t.`credits`) IS NOT DISTINCT FROM TO_JSON_STRING(s.`credits`))"
    )


def test_a_json_column_compared_where_never_null_is_compared_by_its_text_alone() -> None:
    sql = BigQueryWarehouse.same_value_sql(Column("doc", "json"), null_safe=False)

    assert sql == "TO_JSON_STRING(t.`doc`) = TO_JSON_STRING(s.`doc`)"


def test_identifiers_are_quoted_with_backquotes_escaped() -> None:
    assert BigQueryWarehouse.quote("a`b\\c") == "`a\\`b\\\\c`"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (42, "42"),
        (1.5, "1.5"),
        (Decimal("123456789012345678.12345678901234567890"),
         "BIGNUMERIC '123456789012345678.12345678901234567890'"),
        (datetime(2026, 3, 1, 12, 0, 0, 123456), "TIMESTAMP '2026-03-01T12:00:00.123456+00:00'"),
        (datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
         "TIMESTAMP '2026-03-01T12:00:00+00:00'"),
        (date(2026, 3, 1), "DATE '2026-03-01'"),
        (b"\x00\xff", "FROM_BASE64('AP8=')"),
        ("it's a \\ path", "'it\\'s a \\\\ path'"),
    ],
)  # fmt: skip
def test_values_are_rendered_as_typed_literals(value: object, expected: str) -> None:
    assert sql_literal(value) == expected


def test_placeholders_are_replaced_by_their_own_values_including_two_digit_ones() -> None:
    values = [f"v{i}" for i in range(1, 11)]

    assert inline_params("SELECT $10, $1, $2", values) == "SELECT 'v10', 'v1', 'v2'"


def test_the_commit_script_checks_each_stream_state_first_then_applies_in_one_transaction() -> None:
    seen = {"src.a": datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "src.b": None}

    script = commit_script("`_dw`.`state`", seen, [("DELETE FROM `d`.`t` WHERE id = $1", [7])])

    assert script.split(";\n") == [
        "BEGIN TRANSACTION",
        "SELECT IF(NOT EXISTS (SELECT 1 FROM `_dw`.`state` WHERE stream_id = 'src.a'"
        " AND updated_at = TIMESTAMP '2026-03-01T12:00:00+00:00'),"
        " ERROR('dw_concurrent_sync'), 0)",
        "SELECT IF(EXISTS (SELECT 1 FROM `_dw`.`state` WHERE stream_id = 'src.b'),"
        " ERROR('dw_concurrent_sync'), 0)",
        "DELETE FROM `d`.`t` WHERE id = 7",
        "COMMIT TRANSACTION;",
    ]


def test_a_bigquery_url_names_project_dataset_prefix_location_endpoint_and_timeout() -> None:
    url = "bigquery://my-proj/analytics?location=EU&endpoint=http://127.0.0.1:9050&timeout=30"

    assert parse_bigquery_url(url) == BigQueryUrl(
        "my-proj", "analytics", "EU", "http://127.0.0.1:9050", 30.0
    )
    assert parse_bigquery_url("bigquery://my-proj") == BigQueryUrl("my-proj")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bigquery:///prefix", "bigquery://project/dataset_prefix"),
        ("bq://p/x", "bigquery://project/dataset_prefix"),
        ("bigquery://p/a/b", "one dataset prefix"),
        ("bigquery://p/x?region=EU", "unknown parameter"),
        ("bigquery://p/x?timeout=soon", "positive number"),
        ("bigquery://p/x?timeout=0", "positive number"),
    ],
)
def test_a_malformed_bigquery_url_is_refused_saying_why(url: str, message: str) -> None:
    with pytest.raises(MalformedUrl, match=message):
        parse_bigquery_url(url)


def test_an_error_reports_bigquery_reason_and_location() -> None:
    exc = exceptions.BadRequest(
        "400 POST ...: Syntax error",
        errors=[{"reason": "invalidQuery", "location": "query", "message": "Syntax error\nat x"}],
    )

    assert error_text(exc) == "BigQuery invalidQuery at query: Syntax error"
