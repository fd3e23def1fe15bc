"""A large file loads with bounded memory: the peak the loader allocates does not grow with it.

Measured as what Python and Arrow allocate at the peak (tracemalloc and Arrow's memory pool):
unlike RSS, these do not move with the allocator's caching or the machine's load. DuckDB's own
buffer pool is capped by its memory limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[1]

LOAD = """
    import sys, tracemalloc
    import pyarrow as pa
    tracemalloc.start()
    from dw_pipelines.sync.files.runner import sync_files
    from dw_pipelines.sync.files.spec import FileStreamSpec
    from dw_pipelines.sync.files.store import S3Store
    from dw_pipelines.devservices.s3_server import LocalS3
    from pathlib import Path
    endpoint, key_id, secret, bucket, prefix, warehouse_path = sys.argv[1:]
    from dw_pipelines.sync.warehouses import open_warehouse
    server = LocalS3(endpoint, key_id, secret, None, Path("."))
    spec = FileStreamSpec(source="drops", name="events", bucket=bucket, prefix=prefix)
    result = sync_files(spec, S3Store(server.client()), open_warehouse(warehouse_path))
    python_peak, arrow_peak = tracemalloc.get_traced_memory()[1], pa.default_memory_pool().max_memory()
    print(result.rows_read, (python_peak + arrow_peak) // (1 << 20))
"""


def gzip_csv(path: Path, rows: int) -> None:
    with pa.CompressedOutputStream(str(path), "gzip") as out:
        writer = None
        for start in range(0, rows, 250_000):
            ids = pa.array(range(start, min(rows, start + 250_000)), pa.int64())
            table = pa.table({
                "id": ids,
                "note": pc.binary_join_element_wise("a fairly long note for row ", pc.cast(ids, pa.string()), ""),
                "amount": pc.divide(pc.cast(ids, pa.float64()), 7.0),
            })  # fmt: skip
            writer = writer or pcsv.CSVWriter(out, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()


def peak_allocated_loading(local_s3, bucket: str, prefix: str, tmp_path: Path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOAD), local_s3.endpoint_url,
         local_s3.access_key_id, local_s3.secret_access_key, bucket, prefix,
         str(tmp_path / f"{prefix.strip('/')}.duckdb")],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=True,
        # DuckDB's buffer pool is capped; small, the cap is reached by both files.
        env={**os.environ, "DW_DUCKDB_MEMORY_LIMIT": "32MB"},
    )  # fmt: skip
    rows, peak_mib = done.stdout.split()
    return int(rows), int(peak_mib)


def test_peak_memory_stays_flat_from_a_small_to_a_six_times_larger_file(
    local_s3, bucket, tmp_path
) -> None:
    client = local_s3.client()
    for prefix, rows in (("small/", 300_000), ("large/", 1_800_000)):
        gzip_csv(tmp_path / "f.csv.gz", rows)
        client.upload_file(str(tmp_path / "f.csv.gz"), bucket, f"{prefix}f.csv.gz")
    small_rows, small_peak = peak_allocated_loading(local_s3, bucket, "small/", tmp_path)
    large_rows, large_peak = peak_allocated_loading(local_s3, bucket, "large/", tmp_path)

    assert (small_rows, large_rows) == (300_000, 1_800_000)
    # ~140 MB of CSV text in the large file: holding it, or a growing share of it, would show.
    # (Measured on the development machine: 75 and 93 MiB.)
    assert large_peak - small_peak < 32, (small_peak, large_peak)
