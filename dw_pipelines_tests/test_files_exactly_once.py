"""Every object is loaded exactly once: reruns, rewrites, merges and a SIGKILL at any point."""

from __future__ import annotations

import pytest

from dw_pipelines_tests import files_data as data
from dw_pipelines_tests.conftest import kill_child_at, run_files, warehouse_rows


def put(local_s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    local_s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def ids(warehouse_url: str) -> list[int]:
    return [r[0] for r in warehouse_rows(warehouse_url, "SELECT id FROM drops.events ORDER BY id")]


def test_a_rerun_with_no_new_object_loads_nothing(local_s3, bucket, warehouse_url) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    run_files(local_s3, warehouse_url, bucket, prefix="in/")
    again = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert (again.files_listed, again.files_loaded, again.rows_read) == (1, 0, 0)
    assert ids(warehouse_url) == [1, 2, 3]


def test_only_new_objects_are_read(local_s3, bucket, warehouse_url) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    run_files(local_s3, warehouse_url, bucket, prefix="in/")
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(4, 2)))
    second = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert second.loaded == ["in/2.csv"]
    assert ids(warehouse_url) == [1, 2, 3, 4, 5]
    assert second.row_count == 5


def test_a_rewritten_object_replaces_its_rows(local_s3, bucket, warehouse_url) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    put(local_s3, bucket, "in/2.csv", data.csv_bytes(data.rows(10, 1)))
    run_files(local_s3, warehouse_url, bucket, prefix="in/")
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 2)))
    second = run_files(local_s3, warehouse_url, bucket, prefix="in/")

    assert ids(warehouse_url) == [1, 2, 10]
    assert (second.files_replaced, second.rows_deleted, second.rows_inserted) == (1, 3, 2)
    assert second.row_count == 3


def test_a_rewritten_object_is_ignored_under_policy_ignore(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 3)))
    run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", on_rewrite="ignore")
    put(local_s3, bucket, "in/1.csv", data.csv_bytes(data.rows(1, 2)))
    second = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", on_rewrite="ignore")

    assert ids(duckdb_warehouse_url) == [1, 2, 3]
    assert (second.files_loaded, second.files_skipped) == (0, 1)


def test_merge_keeps_one_row_per_key_the_latest_file_winning(
    local_s3, bucket, warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,new\n2,new\n")
    run_files(local_s3, warehouse_url, bucket, prefix="in/", mode="merge", primary_key=("id",))
    put(local_s3, bucket, "in/2.csv", b"id,status\n2,shipped\n3,new\n")
    second = run_files(
        local_s3, warehouse_url, bucket, prefix="in/", mode="merge", primary_key=("id",)
    )

    assert warehouse_rows(warehouse_url, "SELECT id, status FROM drops.events ORDER BY id") == [
        (1, "new"),
        (2, "shipped"),
        (3, "new"),
    ]
    assert (second.rows_inserted, second.rows_updated, second.row_count) == (1, 1, 3)


def test_a_key_repeated_within_a_merge_file_quarantines_it(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,new\n1,shipped\n")
    result = run_files(
        local_s3, duckdb_warehouse_url, bucket, prefix="in/", mode="merge", primary_key=("id",)
    )

    assert result.quarantined == [
        ("in/1.csv", "1 value(s) of the key (id) repeat within the file; mode merge needs one"
         " row per key per file"),
    ]  # fmt: skip


def test_max_files_bounds_a_run_and_the_next_run_continues_oldest_first(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    for n in range(5):
        put(local_s3, bucket, f"in/{n}.csv", data.csv_bytes(data.rows(n * 10, 1)))
    first = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_files=3)
    second = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/", max_files=3)

    assert (first.files_loaded, first.files_pending) == (3, 2)
    assert (second.files_loaded, second.files_pending) == (2, 0)
    assert ids(duckdb_warehouse_url) == [0, 10, 20, 30, 40]


def test_a_partition_run_loads_only_that_days_objects(
    local_s3, bucket, duckdb_warehouse_url
) -> None:
    from datetime import date

    put(local_s3, bucket, "in/2026/11/01/a.csv", data.csv_bytes(data.rows(1, 1)))
    put(local_s3, bucket, "in/2026/11/02/b.csv", data.csv_bytes(data.rows(2, 1)))
    result = run_files(
        local_s3,
        duckdb_warehouse_url,
        bucket,
        prefix="in/",
        partitioning="key_date",
        partition=date(2026, 11, 2),
    )

    assert result.loaded == ["in/2026/11/02/b.csv"]
    assert ids(duckdb_warehouse_url) == [2]


# -- SIGKILL ----------------------------------------------------------------------------------

FILES = 6


def seed(local_s3, bucket: str) -> None:  # type: ignore[no-untyped-def]
    for n in range(FILES):
        put(local_s3, bucket, f"in/{n:02}.csv", data.csv_bytes(data.rows(n * 1000, 1000)))


def kill_at(
    local_s3, bucket: str, warehouse_url: str, mode: str, marker: str, occurrence: int
) -> None:  # type: ignore[no-untyped-def]
    args = ["dw_pipelines_tests._files_child", local_s3.endpoint_url, local_s3.access_key_id,
            local_s3.secret_access_key, bucket, warehouse_url, mode]  # fmt: skip
    kill_child_at(args, marker, occurrence)


@pytest.mark.parametrize("mode", ["append", "merge"])
@pytest.mark.parametrize(
    ("marker", "occurrence"),
    [
        ("load", 1),  # the first file's rows staged, nothing committed
        ("commit", 3),  # the third file's transaction about to commit
        ("committed", 4),  # four files committed
    ],
)
def test_killed_anywhere_then_rerun_every_files_rows_appear_once(
    local_s3, bucket, warehouse_url, mode: str, marker: str, occurrence: int
) -> None:
    seed(local_s3, bucket)
    kill_at(local_s3, bucket, warehouse_url, mode, marker, occurrence)
    put(local_s3, bucket, "in/99.csv", data.csv_bytes(data.rows(99_000, 10)))
    rerun = run_files(
        local_s3, warehouse_url, bucket, prefix="in/", mode=mode,
        primary_key=("id",) if mode == "merge" else (),
    )  # fmt: skip

    expected = [i for n in range(FILES) for i in range(n * 1000, n * 1000 + 1000)]
    assert ids(warehouse_url) == expected + list(range(99_000, 99_010))
    assert rerun.row_count == FILES * 1000 + 10
    assert warehouse_rows(
        warehouse_url, "SELECT count(*), sum(rows_loaded) FROM _dw.files WHERE status = 'loaded'"
    ) == [(FILES + 1, FILES * 1000 + 10)]


def test_an_older_file_rewritten_later_does_not_roll_back_a_newer_value(
    local_s3, bucket, warehouse_url
) -> None:
    import time

    merge = {"prefix": "in/", "mode": "merge", "primary_key": ("id",)}
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,old\n2,old\n")
    time.sleep(1.1)  # LastModified has one-second resolution
    put(local_s3, bucket, "in/2.csv", b"id,status\n1,new\n")
    run_files(local_s3, warehouse_url, bucket, **merge)
    time.sleep(1.1)
    put(local_s3, bucket, "in/1.csv", b"id,status\n1,old again\n2,fixed\n")
    # 2.csv is older than the rewritten 1.csv now: the rewrite wins for both keys.
    run_files(local_s3, warehouse_url, bucket, **merge)
    assert warehouse_rows(warehouse_url, "SELECT id, status FROM drops.events ORDER BY id") == [
        (1, "old again"),
        (2, "fixed"),
    ]


def test_a_run_given_keys_loads_only_those(local_s3, bucket, duckdb_warehouse_url) -> None:
    for n in range(4):
        put(local_s3, bucket, f"in/{n}.csv", data.csv_bytes(data.rows(n, 1)))
    first = run_files(
        local_s3, duckdb_warehouse_url, bucket, prefix="in/", keys={"in/1.csv", "in/3.csv"}
    )
    rest = run_files(local_s3, duckdb_warehouse_url, bucket, prefix="in/")

    assert sorted(first.loaded) == ["in/1.csv", "in/3.csv"]
    assert sorted(rest.loaded) == ["in/0.csv", "in/2.csv"]
