"""A file-stream run in a child process that announces where it is and can stop there to be
SIGKILLed.

It runs the real runner, boto3 store (against the test's S3 server) and warehouse; only
announcements (see `_sync_child`) are added after each warehouse load and around each commit.
argv: endpoint, access key, secret, bucket, warehouse URL, mode (append|merge).
"""

from __future__ import annotations

import sys

from dw_pipelines.resources.s3 import S3Resource
from dw_pipelines.sync.files.runner import sync_files
from dw_pipelines.sync.files.spec import FileStreamSpec
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests._sync_child import announce_loads_and_commits, say


def main() -> None:
    endpoint, key_id, secret, bucket, warehouse_url, mode = sys.argv[1:7]
    warehouse = open_warehouse(warehouse_url)
    announce_loads_and_commits(warehouse)
    resource = S3Resource(
        endpoint_url=endpoint, access_key_id=key_id, secret_access_key=secret,
        region="us-east-1", path_style=True,
    )  # fmt: skip
    spec = FileStreamSpec(
        source="drops",
        name="events",
        bucket=bucket,
        prefix="in/",
        mode=mode,
        primary_key=("id",) if mode == "merge" else (),
    )
    with resource.open() as store:
        result = sync_files(spec, store, warehouse)
    warehouse.close()
    say(f"done {result.files_loaded}")


if __name__ == "__main__":
    main()
