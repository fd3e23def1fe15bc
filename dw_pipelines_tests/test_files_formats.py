"""S3 file streams read every supported format and compression into exact rows.

The bucket is on a real S3-compatible server (SeaweedFS) reached by boto3 over HTTP.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import run_files, warehouse_rows

# JSON has no decimal or zoned timestamp type: declared, every format loads the same values.
AMOUNT = {"amount": "decimal(12,2)", "placed_at": "timestamptz"}


def put(local_s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def loaded(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url,
        "SELECT id, customer, amount, placed_at FROM drops.events ORDER BY id",
    )


def expected(records: list[dict]) -> list[tuple]:
    return [(r["id"], r["customer"], r["amount"], r["placed_at"]) for r in records]


@pytest.mark.parametrize(
    ("key", "encode"),
    [
        ("in/a.csv", data.csv_bytes),
        ("in/a.csv.gz", lambda r: data.gzip_bytes(data.csv_bytes(r))),
        ("in/a.csv.zst", lambda r: data.zstd_bytes(data.csv_bytes(r))),
        ("in/a.tsv", lambda r: data.csv_bytes(r, delimiter="\t")),
        ("in/a.jsonl", data.jsonl_bytes),
        ("in/a.jsonl.gz", lambda r: data.gzip_bytes(data.jsonl_bytes(r))),
        ("in/a.parquet", data.parquet_bytes),
    ],
)
def test_each_format_and_compression_loads_exact_rows(
    local_s3, bucket, warehouse_url, key: str, encode
) -> None:
    records = data.rows(1, 500)
    put(local_s3, bucket, key, encode(records))
    result = run_files(local_s3, warehouse_url, bucket, prefix="in/", column_types=AMOUNT)

    assert loaded(warehouse_url) == expected(records)
    assert (result.files_loaded, result.rows_inserted) == (1, 500)


def test_every_row_names_its_file_and_its_modification_time(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/a.csv", data.csv_bytes(data.rows(1, 2)))
    head = local_s3.client().head_object(Bucket=bucket, Key="in/a.csv")
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT DISTINCT _dw_source_file, _dw_source_modified FROM drops.events",
    ) == [("in/a.csv", head["LastModified"])]


def test_types_are_inferred_from_the_first_file_and_overridable(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/a.csv", data.csv_bytes(data.rows(1, 3)))
    result = run_files(
        local_s3, duckdb_warehouse_url, bucket, prefix="in/", column_types={"id": "string"}
    )

    assert {c.name: c.type_label for c in result.columns} == {
        "id": "string",
        "customer": "string",
        "amount": "float64",
        "placed_at": "timestamptz",
    }


def test_headerless_csv_takes_declared_names_and_null_markers(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    body = b"1;x;NA\n2;NA;2.50\n"
    put(local_s3, bucket, "in/a.txt", body)
    run_files(
        local_s3,
        duckdb_warehouse_url,
        bucket,
        prefix="in/",
        format="csv",
        csv={"delimiter": ";", "header": False, "column_names": ("id", "code", "price"),
             "null_values": ("NA",)},
        column_types={"price": "decimal(10,2)"},
    )  # fmt: skip

    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT id, code, price FROM drops.events ORDER BY id"
    ) == [(1, "x", None), (2, None, Decimal("2.50"))]


def test_only_keys_under_the_prefix_matching_the_glob_are_read(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/a.csv", data.csv_bytes(data.rows(1, 1)))
    put(local_s3, bucket, "in/sub/b.csv", data.csv_bytes(data.rows(2, 1)))
    put(local_s3, bucket, "in/c.json.tmp", b"not a file for us")
    put(local_s3, bucket, "other/d.csv", data.csv_bytes(data.rows(4, 1)))
    result = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", glob="*.csv")

    assert sorted(result.loaded) == ["in/a.csv", "in/sub/b.csv"]


def test_declared_names_replace_a_header_line(local_s3, bucket, duckdb_warehouse_url) -> None:
    put(local_s3, bucket, "in/a.csv", b"ID,Code\n1,x\n2,y\n")
    run_files(
        local_s3, duckdb_warehouse_url, bucket, prefix="in/",
        csv={"header": True, "column_names": ("id", "code")},
    )  # fmt: skip

    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT id, code FROM drops.events ORDER BY id"
    ) == [
        (1, "x"),
        (2, "y"),
    ]


def test_a_column_empty_at_the_start_of_the_first_file_is_read_as_text(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    # 150k rows fill more than the first read block with an empty `note`.
    body = b"id,note\n" + b"".join(b"%d,\n" % i for i in range(150_000)) + b"150000,late\n"
    put(local_s3, bucket, "in/a.csv", body)
    result = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert result.quarantined == []
    assert {c.name: c.type_label for c in result.columns}["note"] == "string"
    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT note FROM drops.events WHERE note IS NOT NULL"
    ) == [("late",)]


def test_a_local_io_error_fails_the_read_instead_of_quarantining_the_file(tmp_path) -> None:
    from dw_pipelines.sync.files.formats import BadFile, parquet_columns
    from dw_pipelines.sync.files.spec import FileStreamSpec

    spec = FileStreamSpec(source="drops", name="events", bucket="b", format="parquet")
    with pytest.raises(OSError) as raised:
        parquet_columns(spec, str(tmp_path), None, {})  # a directory: EISDIR, not a bad file

    assert not isinstance(raised.value, BadFile)
    assert raised.value.errno is not None
