"""Types arrive faithfully: exact decimals, microsecond timestamps, json, bytes, uuid, NULL vs ''."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from dw_pipelines.sync.errors import DataConversionError
from dw_pipelines_tests.conftest import run_sql, run_sync, warehouse_rows

UID = uuid.UUID("2f60542e-3435-438d-bc88-9e37fe2b871d")
TEXT = 'line one\nline "two", with, commas\t and \\ backslash'


def fetch_one(warehouse_url: str, columns: str, where: str = "id = 1") -> tuple:
    return warehouse_rows(warehouse_url, f"SELECT {columns} FROM src.t WHERE {where}")[0]


def test_postgres_types_arrive_exactly(pg_source_url: str, warehouse_url: str) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE t (id int PRIMARY KEY, tstz timestamptz, ts timestamp, amount numeric(12,2),"
        " wide numeric(38,10), j json, jb jsonb, flag boolean, raw bytea, u uuid, d date, tm time,"
        " txt text, empty text, missing text, s smallint, b bigint, r real, dp double precision,"
        " code char(3), tags int[])",
        "INSERT INTO t VALUES (1, '2026-03-01 12:00:00.123456+02', '2026-03-01 12:00:00.000001',"
        " 1234567890.12, 1234567890123456789012345678.0123456789, '{\"a\": [1, 2]}',"
        f" '{{\"b\": {{\"c\": null}}}}', true, '\\x00ff10', '{UID}', '2024-02-29', '23:59:59.999999',"
        f" E'{TEXT.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n').replace(chr(9), chr(92) + 't')}',"
        " '', NULL, -32768, 9223372036854775807, 1.5, 0.1, 'EU', '{1,2,3}')",
        "INSERT INTO t (id) VALUES (2)",
    )

    run_sync(pg_source_url, warehouse_url, object="t", mode="full_refresh")

    row = fetch_one(
        warehouse_url,
        "tstz, ts, amount, wide, j, jb, flag, raw, u, d, tm, txt, empty, missing, s, b, r, dp, code, tags",
    )
    (
        tstz,
        ts,
        amount,
        wide,
        j,
        jb,
        flag,
        raw,
        u,
        d,
        tm,
        txt,
        empty,
        missing,
        s,
        b,
        r,
        dp,
        code,
        tags,
    ) = row
    assert tstz == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert ts == datetime(2026, 3, 1, 12, 0, 0, 1)
    assert amount == Decimal("1234567890.12")
    assert wide == Decimal("1234567890123456789012345678.0123456789")
    assert _json(j) == {"a": [1, 2]} and _json(jb) == {"b": {"c": None}}
    assert flag is True and bytes(raw) == b"\x00\xff\x10"
    assert str(u) == str(UID)
    assert (d, tm) == (date(2024, 2, 29), time(23, 59, 59, 999999))
    assert txt == TEXT and empty == "" and missing is None
    assert (s, b, r, dp) == (-32768, 9223372036854775807, 1.5, 0.1)
    assert code == "EU "
    assert _json(tags) == [1, 2, 3]
    nulls = fetch_one(warehouse_url, "tstz, amount, j, raw, u, flag", where="id = 2")
    assert nulls == (None,) * 6


def test_mariadb_types_arrive_exactly(mysql_source_url: str, warehouse_url: str) -> None:
    run_sql(
        mysql_source_url,
        "CREATE TABLE t (id int PRIMARY KEY, dt datetime(6), ts timestamp(6) NULL, amount decimal(12,2),"
        " j json, small tinyint, raw blob, name varchar(50), empty varchar(5), missing text, big bigint unsigned)",
        "SET time_zone = '+00:00'",
    )
    run_sql(
        mysql_source_url,
        "SET time_zone = '+00:00'",
        "INSERT INTO t VALUES (1, '2026-03-01 12:00:00.000001', '2026-03-01 12:00:00.123456', 99.95,"
        " '{\"k\": \"v\"}', -5, x'00ff', 'Chloé', '', NULL, 18446744073709551615)",
    )

    run_sync(mysql_source_url, warehouse_url, object="t", mode="full_refresh", batch_rows=1)

    dt, ts, amount, j, small, raw, name, empty, missing, big = fetch_one(
        warehouse_url, "dt, ts, amount, j, small, raw, name, empty, missing, big"
    )
    assert dt == datetime(2026, 3, 1, 12, 0, 0, 1)
    assert ts == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert amount == Decimal("99.95")
    assert _json(j) == {"k": "v"}
    assert (small, bytes(raw), name, empty, missing) == (-5, b"\x00\xff", "Chloé", "", None)
    assert big == Decimal("18446744073709551615")


def test_a_value_with_more_decimals_than_its_column_holds_fails_naming_it(
    pg_source_url: str, duckdb_warehouse_url: str
) -> None:
    run_sql(
        pg_source_url,
        "CREATE TABLE t (id int PRIMARY KEY, ratio numeric)",
        "INSERT INTO t VALUES (1, 0.1234567890123)",
    )
    with pytest.raises(DataConversionError, match="stream 'src.t'.*column 'ratio'.*data loss"):
        run_sync(pg_source_url, duckdb_warehouse_url, object="t", mode="full_refresh")
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'src'"
    assert warehouse_rows(duckdb_warehouse_url, tables) == [(0,)]


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
