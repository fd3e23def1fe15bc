"""The `checks:` block of a stream entry: what it accepts, what it refuses (naming the entry's
field), and the SQL the checks run, built without a connection. No server needed."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.sync.checks import CHECK_TYPES, declared_checks
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.sources.sql import SqlSource, checksum_sql
from dw_pipelines.sync.spec import DeclarationError
from dw_pipelines.sync.warehouses.duckdb import DuckDBWarehouse
from dw_pipelines.sync.warehouses.postgres import PostgresWarehouse

NO_RECONCILE = tuple(t for t in CHECK_TYPES if t != "reconcile")


def test_each_check_type_gets_a_default_name_and_severity() -> None:
    checks = declared_checks(
        "shop.orders",
        [
            {"not_null": ["customer_id"]},
            {"accepted_values": "status", "values": ["paid"]},
            {"range": "total_amount", "min": 0},
            {"freshness": "1 day"},
            {"schema_drift": True},
            {"reconcile": True},
        ],
        CHECK_TYPES,
    )
    assert [(c.name, c.severity, c.blocking) for c in checks] == [
        ("not_null", "error", True),
        ("accepted_values_status", "error", True),
        ("range_total_amount", "error", True),
        ("freshness_check", "warn", False),
        ("schema_unchanged", "warn", False),
        ("matches_source", "error", True),
    ]
    assert checks[3].within == timedelta(days=1)


@pytest.mark.parametrize(
    ("entries", "field", "problem"),
    [
        ([{"severity": "warn"}], "checks[0]", "names exactly one of"),
        ([{"not_null": ["a"], "range": "b", "min": 0}], "checks[0]", "(found 2)"),
        ([{"range": "amount"}], "checks[0].range", "needs a 'min', a 'max' or both"),
        ([{"range": "amount", "min": 5, "max": 1}], "checks[0].max", "is below min 5"),
        ([{"range": "amount", "min": "low"}], "checks[0].min", "must be a number"),
        ([{"accepted_values": "status"}], "checks[0].values", "lists the values"),
        ([{"not_null": ["a"], "values": [1]}], "checks[0].values", "does not apply to a not_null"),
        ([{"freshness": "soon"}], "checks[0].freshness", "is not a duration"),
        ([{"schema_drift": False}], "checks[0].schema_drift", "is `true`"),
        ([{"reconcile": True}], "checks[0].reconcile", "is not evaluated on this stream"),
        ([{"not_null": ["a"], "severity": "fatal"}], "checks[0].severity", "'warn' or 'error'"),
        ([{"freshness": "1h", "name": "fresh"}], "checks[0].name", "Dagster's own"),
        (
            [{"not_null": ["a"], "name": "no_quarantined_files"}],
            "checks[0].name",
            "is a built-in check",
        ),
        (
            [{"range": "a", "min": 0}, {"range": "a", "max": 9}],
            "checks[1].name",
            "a second check named 'range_a'",
        ),
    ],
)
def test_a_bad_check_entry_is_refused_naming_the_stream_and_field(
    entries: list[dict], field: str, problem: str
) -> None:
    with pytest.raises(DeclarationError) as caught:
        declared_checks("shop.orders", entries, NO_RECONCILE)
    assert caught.value.field_name == field
    assert "'shop.orders'" in str(caught.value) and problem in str(caught.value)


# A file stream and a CDC stream, each with the checks their own step evaluates.
STREAMS = {
    "files": (
        "drops:\n    type: s3",
        "source: drops\n    name: returns\n    files: {bucket: b}",
        ["drops", "returns"],
    ),
    "cdc": (
        "shop:\n    type: postgres\n    url_env: SHOP_URL",
        "source: shop\n    object: orders\n    mode: cdc",
        ["shop", "orders"],
    ),
}
DECLARED_NAMES = {"not_null", "accepted_values_status", "range_amount", "schema_unchanged"}


def stream_catalog(kind: str, checks: str) -> StreamCatalog:
    source, stream, _ = STREAMS[kind]
    yaml = f"sources:\n  {source}\nstreams:\n  - {stream}\n    checks:\n{checks}"
    return StreamCatalog.resolve_from_yaml(yaml)


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_file_and_cdc_streams_declare_value_and_drift_checks_on_their_asset(kind: str) -> None:
    checks = (
        "      - not_null: [id]\n"
        "      - {accepted_values: status, values: [a], severity: warn}\n"
        "      - {range: amount, min: 0}\n"
        "      - schema_drift: true\n"
        "      - freshness: 1 day\n"
    )
    defs = stream_catalog(kind, checks).build_defs(None)  # type: ignore[arg-type]
    key = dg.AssetKey(STREAMS[kind][2])
    specs = {s.name: s for s in defs.get_assets_def(key).check_specs}
    assert {n: s.blocking for n, s in specs.items() if n in DECLARED_NAMES} == {
        "not_null": True,
        "accepted_values_status": False,
        "range_amount": True,
        "schema_unchanged": False,
    }
    assert "freshness_check" not in specs  # Dagster's own check, ticked by the sensor


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_reconciliation_is_refused_on_file_and_cdc_streams(kind: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        stream_catalog(kind, "      - reconcile: true\n").build_defs(None)  # type: ignore[arg-type]
    assert caught.value.field_name == "checks[0].reconcile"
    assert "is not evaluated on this stream" in str(caught.value)


def test_two_checks_of_one_type_on_one_column_differ_by_name() -> None:
    checks = declared_checks(
        "shop.orders",
        [
            {"range": "amount", "min": 0},
            {"range": "amount", "max": 10_000, "severity": "warn", "name": "amount_plausible"},
        ],
        NO_RECONCILE,
    )
    assert [c.name for c in checks] == ["range_amount", "amount_plausible"]


def test_value_checks_are_parameterised_and_look_at_live_rows_only() -> None:
    count, examples = DuckDBWarehouse.violations_sql(
        '"s"."t"', "accepted_values", ["status"], keys=["id"], n_values=2,
        live_column="_dw_deleted_at", limit=5,
    )  # fmt: skip
    assert count == (
        'SELECT count(*) FROM "s"."t" t WHERE (t."status" NOT IN ($1, $2))'
        ' AND t."_dw_deleted_at" IS NULL'
    )
    assert examples.startswith('SELECT t."id", t."status" FROM "s"."t" t WHERE')
    assert examples.endswith('ORDER BY t."id" LIMIT 5')


def test_a_range_with_both_bounds_numbers_its_parameters_in_order() -> None:
    assert (
        DuckDBWarehouse.violation_predicate_sql("range", ["q"], low=True, high=True)
        == 't."q" < $1 OR t."q" > $2'
    )
    assert DuckDBWarehouse.violation_predicate_sql("range", ["q"], high=True) == 't."q" > $1'


@pytest.mark.parametrize(
    ("warehouse", "expected"),
    [
        (DuckDBWarehouse, 'CAST(epoch_us(t."at") AS VARCHAR)'),
        (PostgresWarehouse, 'CAST(CAST(extract(epoch FROM t."at") * 1000000 AS BIGINT) AS TEXT)'),
    ],
)
def test_times_are_compared_as_epoch_microseconds_in_each_warehouse(warehouse, expected) -> None:  # type: ignore[no-untyped-def]
    assert warehouse.canonical_text_sql(Column("at", "timestamptz")) == expected


def test_mysql_sources_concatenate_with_concat_not_the_or_operator() -> None:
    sql = checksum_sql(
        "mysql", lambda n: f"`{n}`", [Column("id", "int64")], Column("c", "timestamp")
    )
    assert sql.key_text.startswith("CONCAT(") and "||" not in sql.row_hash


KEYS = [Column("id", "int64", False), Column("code", "string", False)]
CURSOR = Column("changed_at", "timestamp")
ROWS = [(1, "a", "2026-11-01 09:00:00.000000"), (2, "b", "2026-11-01 09:00:00.250000")]


def test_a_sqlite_source_and_a_duckdb_warehouse_hash_the_same_rows_alike(tmp_path: Path) -> None:
    """Both sides of a reconciliation render key and cursor identically, so equal rows give
    equal checksums (SQLite through the source's own functions, DuckDB in SQL)."""
    with sqlite3.connect(tmp_path / "src.sqlite") as db:
        db.execute("CREATE TABLE t (id INTEGER, code VARCHAR(5), changed_at DATETIME)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    source = SqlSource(f"sqlite:///{tmp_path / 'src.sqlite'}")
    warehouse = DuckDBWarehouse(":memory:")
    try:
        warehouse.execute("CREATE TABLE t (id BIGINT, code VARCHAR, changed_at TIMESTAMP)")
        for row in ROWS:
            warehouse.execute("INSERT INTO t VALUES ($1, $2, CAST($3 AS TIMESTAMP))", row)
        held = warehouse.key_checksums("t", KEYS, CURSOR)
        read = source.key_checksums("t", KEYS, CURSOR, None)
        rows = {b: source.key_rows("t", KEYS, CURSOR, b, below=None) for b in read}
    finally:
        warehouse.close()
        source.close()
    assert held == read and sum(n for n, _ in read.values()) == 2
    assert sorted(r for found in rows.values() for r in found) == [
        ("1|a", "1793523600000000"),
        ("2|b", "1793523600250000"),
    ]
