"""A bad file is quarantined with its error; none of its rows land; the other files still load."""

from __future__ import annotations

import pytest

from dw_pipelines.sync.files.runner import quarantined_files
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import run_files, warehouse_rows


def put(local_s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def ids(warehouse_url: str) -> list[int]:
    return [r[0] for r in warehouse_rows(warehouse_url, "SELECT id FROM drops.events ORDER BY id")]


def files_table(warehouse_url: str) -> list[tuple]:
    return warehouse_rows(
        warehouse_url,
        "SELECT object_key, status, rows_loaded, bad_rows FROM _dw.files ORDER BY object_key",
    )


def quarantine_of(warehouse_url: str) -> dict[str, str]:
    warehouse = open_warehouse(warehouse_url)
    try:
        return dict(quarantined_files(warehouse, "drops.events"))
    finally:
        warehouse.close()


def good_then_bad_then_good(local_s3, bucket: str, bad_key: str, bad_body: bytes) -> None:  # type: ignore[no-untyped-def]
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    put(local_s3, bucket, bad_key, bad_body)
    put(local_s3, bucket, "in/3.csv", data.csv_bytes(data.rows(7, 3)))


def test_a_malformed_csv_row_quarantines_the_file_and_the_others_load(
    local_s3, bucket, warehouse_url
) -> None:
    body = data.csv_bytes(data.rows(4, 3)) + b"99,too,many,fields,here\n"
    good_then_bad_then_good(local_s3, bucket, "in/2.csv", body)
    result = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [1, 2, 3, 7, 8, 9]
    assert result.files_quarantined == 1
    assert "expected 4 columns, got 5" in quarantine_of(warehouse_url)["in/2.csv"]
    assert files_table(warehouse_url) == [
        ("in/1.csv", "loaded", 3, 0),
        ("in/2.csv", "quarantined", 0, 1),
        ("in/3.csv", "loaded", 3, 0),
    ]


def test_a_file_whose_columns_differ_is_quarantined(local_s3, bucket, warehouse_url) -> None:
    good_then_bad_then_good(local_s3, bucket, "in/2.csv", b"id,customer,total\n4,c,1.00\n")
    run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [1, 2, 3, 7, 8, 9]
    assert quarantine_of(warehouse_url)["in/2.csv"] == (
        "the file's columns do not match the stream's: missing ['amount', 'placed_at'];"
        " unexpected ['total']"
    )


def test_a_value_that_does_not_fit_the_column_type_quarantines_the_file(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    body = b"id,customer,amount,placed_at\nfour,c,1.00,2026-11-01T00:00:00Z\n"
    good_then_bad_then_good(local_s3, bucket, "in/2.csv", body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert ids(duckdb_warehouse_url) == [1, 2, 3, 7, 8, 9]
    assert "four" in quarantine_of(duckdb_warehouse_url)["in/2.csv"]


def test_a_truncated_gzip_is_quarantined(local_s3, bucket, warehouse_url) -> None:
    whole = data.gzip_bytes(data.csv_bytes(data.rows(4, 3000)))
    good_then_bad_then_good(local_s3, bucket, "in/2.csv.gz", whole[: len(whole) // 2])
    run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [1, 2, 3, 7, 8, 9]
    assert "Truncated compressed stream" in quarantine_of(warehouse_url)["in/2.csv.gz"]


def test_a_corrupt_parquet_file_is_quarantined(local_s3, bucket, warehouse_url) -> None:
    put(local_s3, bucket, "in/1.parquet", data.parquet_bytes(data.rows(1, 3)))
    body = bytearray(data.parquet_bytes(data.rows(4, 3)))
    body[-12:-8] = b"\xff\xff\xff\x7f"  # footer length beyond the file
    put(local_s3, bucket, "in/2.parquet", bytes(body))
    run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [1, 2, 3]
    assert "in/2.parquet" in quarantine_of(warehouse_url)


def test_max_bad_rows_accepts_and_records_a_few_bad_rows(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    body = (
        b"id,customer,amount,placed_at\n1,a,1.00,2026-11-01T00:00:00Z\n2,b\n"
        b"3,c,3.00,2026-11-01T00:00:00Z\n4,d,4.00,x,y\n"
    )
    put(local_s3, bucket, "in/1.csv", body)
    result = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_bad_rows=2)

    assert ids(duckdb_warehouse_url) == [1, 3]
    assert result.bad_rows == 2
    assert warehouse_rows(
        duckdb_warehouse_url,
        "SELECT object_key, error, row_text FROM _dw.bad_rows ORDER BY row_text",
    ) == [
        ("in/1.csv", "expected 4 columns, got 2", "2,b"),
        ("in/1.csv", "expected 4 columns, got 5", "4,d,4.00,x,y"),
    ]


def test_more_bad_rows_than_allowed_quarantines_the_file(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    body = b"id,customer\n1,a\n2\n3\n"
    put(local_s3, bucket, "in/1.csv", body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_bad_rows=1)

    assert files_table(duckdb_warehouse_url) == [("in/1.csv", "quarantined", 0, 2)]


def test_a_quarantined_file_records_every_malformed_row_with_its_line(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    good = b"5,e,5.00,2026-11-01T00:00:00Z\n" * 3
    body = b"id,customer,amount,placed_at\n1,a\n" + good + b"2,b,x,y,z\n" + good + b"3\n"
    put(local_s3, bucket, "in/1.csv", body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_bad_rows=1)

    assert files_table(duckdb_warehouse_url) == [("in/1.csv", "quarantined", 0, 3)]
    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT line, error, row_text FROM _dw.bad_rows ORDER BY line"
    ) == [
        (2, "expected 4 columns, got 2", "1,a"),
        (6, "expected 4 columns, got 5", "2,b,x,y,z"),
        (10, "expected 4 columns, got 1", "3"),
    ]
    assert quarantine_of(duckdb_warehouse_url)["in/1.csv"] == (
        "3 malformed row(s), more than max_bad_rows (1); line 2: expected 4 columns, got 2: 1,a"
    )


def test_malformed_rows_are_recorded_up_to_the_limit_then_the_read_stops(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    from dw_pipelines.sync.files.formats import RECORDED_BAD_ROWS

    body = b"id,customer,amount,placed_at\n" + b"1,a\n" * (RECORDED_BAD_ROWS + 500)
    put(local_s3, bucket, "in/1.csv", body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert warehouse_rows(
        duckdb_warehouse_url, "SELECT count(*), min(line), max(line) FROM _dw.bad_rows"
    ) == [(RECORDED_BAD_ROWS, 2, RECORDED_BAD_ROWS + 1)]
    assert quarantine_of(duckdb_warehouse_url)["in/1.csv"].startswith(
        f"at least {RECORDED_BAD_ROWS} malformed row(s), more than max_bad_rows (0); line 2:"
    )


def test_accepted_bad_rows_are_recorded_with_their_line(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    body = b"id,customer,amount,placed_at\n1,a,1.00,2026-11-01T00:00:00Z\n2,b\n"
    put(local_s3, bucket, "in/1.csv", body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_bad_rows=1)

    assert warehouse_rows(duckdb_warehouse_url, "SELECT line, row_text FROM _dw.bad_rows") == [
        (3, "2,b")
    ]


def test_a_quarantined_file_is_not_retried_until_it_is_rewritten(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    good_then_bad_then_good(local_s3, bucket, "in/2.csv", b"id,customer\n1\n")
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")
    again = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(4, 3)))
    fixed = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert (again.files_loaded, again.files_quarantined) == (0, 0)
    assert fixed.loaded == ["in/2.csv"]
    assert ids(duckdb_warehouse_url) == list(range(1, 10))
    assert quarantine_of(duckdb_warehouse_url) == {}


@pytest.mark.parametrize("key", ["in/2.csv", "in/2.jsonl"])
def test_invalid_utf8_is_quarantined(local_s3, bucket, duckdb_warehouse_url, key: str) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    body = (
        b"id,customer,amount,placed_at\n4,\xff\xfe,1.00,2026-11-01T00:00:00Z\n"
        if key.endswith(".csv")
        else b'{"id": 4, "customer": "\xff\xfe"}\n'
    )
    put(local_s3, bucket, key, body)
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert ids(duckdb_warehouse_url) == [1, 2, 3]
    assert key in quarantine_of(duckdb_warehouse_url)


def test_a_parquet_value_that_does_not_fit_the_column_type_quarantines_the_file(
    local_s3, bucket, warehouse_url
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    def parquet(ids: list[str]) -> bytes:
        sink = io.BytesIO()
        pq.write_table(pa.table({"id": pa.array(ids, pa.string())}), sink)
        return sink.getvalue()

    put(local_s3, bucket, "in/1.parquet", parquet(["1", "2"]))
    put(local_s3, bucket, "in/2.parquet", parquet(["3", "four"]))
    result = run_files(local_s3, warehouse_url, bucket, prefix="in/", column_types={"id": "int64"})

    assert ids(warehouse_url) == [1, 2]
    assert [k for k, _ in result.quarantined] == ["in/2.parquet"]


def test_a_value_the_warehouse_refuses_quarantines_the_file(
    local_s3, bucket, warehouse_url
) -> None:
    # PostgreSQL text cannot hold NUL; the reader passes it, the warehouse refuses it.
    put(local_s3, bucket, "in/1.csv", b"id,note\n1,fine\n")
    put(local_s3, bucket, "in/2.csv", b"id,note\n2,nul\x00here\n")
    put(local_s3, bucket, "in/3.csv", b"id,note\n3,fine\n")
    result = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    if warehouse_url.startswith("postgresql"):
        assert [k for k, _ in result.quarantined] == ["in/2.csv"]
        assert ids(warehouse_url) == [1, 3]
    else:  # DuckDB keeps the NUL: nothing to refuse
        assert ids(warehouse_url) == [1, 2, 3]


def test_a_rewrite_that_is_bad_takes_the_previous_versions_rows_away(
    local_s3, bucket, warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 2)))
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(5, 1)))
    run_files(local_s3, warehouse_url, bucket, prefix="in/")
    put(local_s3, bucket, "in/1.csv", b"id,customer,amount,placed_at\n1,2\n")
    result = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [5]
    assert (result.files_quarantined, result.rows_deleted, result.row_count) == (1, 2, 1)


def test_a_quarantined_file_fixed_later_loads_even_under_on_rewrite_ignore(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    ignore = {"prefix": "in/", "on_rewrite": "ignore"}
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 2)))
    put(local_s3, bucket, "in/2.csv", b"id,customer\n1\n")
    run_files(local_s3, duckdb_warehouse_url, bucket, **ignore)
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(3, 1)))
    fixed = run_files(local_s3, duckdb_warehouse_url, bucket, **ignore)

    assert fixed.loaded == ["in/2.csv"]
    assert ids(duckdb_warehouse_url) == [1, 2, 3]
