"""`python -m dw_pipelines.demo prepare|run|summary|stop-s3`: the steps of `make demo`.

prepare: builds the demo shop's SQLite database on the first run, and on every later run
simulates a day of business in it, so the next sync has changes to pick up incrementally.
It also starts the demo's local S3 server (SeaweedFS, kept running under .dw/s3 for the next
runs and `make dev`) and lands the day's files in it.
run -- CMD: runs CMD with the demo's services up and their variables set: the S3 server, and
the Salesforce fake org (started for the command, stopped after it).
summary: prints each synced table, its row count and cursor, and where everything lives.
stop-s3: stops the demo's S3 server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from dw_pipelines import settings
from dw_pipelines.demo import drops, shop
from dw_pipelines.devservices import s3_server
from dw_pipelines.sync.redact import safe_url
from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL, open_warehouse
from dw_pipelines.sync.warehouses.base import STATE_SCHEMA, STATE_TABLE, SYNC_LOG_TABLE

DEMO_URL_ENV = "DW_DEMO_SHOP_URL"


def demo_db_path() -> Path:
    url = make_url(os.environ.get(DEMO_URL_ENV, "sqlite:///.dw/demo_shop.sqlite"))
    if url.get_backend_name() != "sqlite" or not url.database:
        sys.exit(
            f"{DEMO_URL_ENV} must be a sqlite:/// URL for the demo (it is {safe_url(str(url))})"
        )
    return Path(url.database)


def prepare() -> None:
    path = demo_db_path()
    if path.exists():
        counts = shop.churn(path)
        print(f"demo shop: a day of business in {path}: {counts}")
    else:
        counts = shop.build(path)
        print(f"demo shop: built {path}: {counts}")
    server = s3_server.ensure_running(s3_dir())
    landed = drops.seed(server.client())
    print(f"demo S3 ({server.endpoint_url}): bucket {drops.BUCKET}: {landed}")


def s3_dir() -> Path:
    return Path(os.environ.get("DW_HOME", ".dw")) / "s3"


def run_with_demo_services(command: list[str]) -> int:
    """Run `command` with the S3 server and the Salesforce fake org up, their variables set."""
    from dw_pipelines.demo.salesforce import run_with_fake_org

    os.environ.update(s3_server.ensure_running(s3_dir()).env())
    return run_with_fake_org(command)


def summary() -> None:
    url = os.environ.get(settings.WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL
    warehouse = open_warehouse(url)
    try:
        states = warehouse.rows(
            f"SELECT stream_id, state FROM {warehouse.table(STATE_SCHEMA, STATE_TABLE)}"
            " ORDER BY stream_id"
        )
        last = {
            row[0]: row[1:]
            for row in warehouse.rows(
                "SELECT stream_id, mode, rows_read, rows_inserted, rows_updated, rows_deleted,"
                " cursor_after"
                f" FROM {warehouse.table(STATE_SCHEMA, SYNC_LOG_TABLE)}"
                " QUALIFY row_number() OVER (PARTITION BY stream_id ORDER BY finished_at DESC) = 1"
                if warehouse.dialect == "duckdb"
                else "SELECT DISTINCT ON (stream_id) stream_id, mode, rows_read, rows_inserted,"
                " rows_updated, rows_deleted, cursor_after"
                f" FROM {warehouse.table(STATE_SCHEMA, SYNC_LOG_TABLE)}"
                " ORDER BY stream_id, finished_at DESC"
            )
        }
        tables = []
        for stream_id, _state in states:
            schema, name = stream_id.split(".", 1)
            count = warehouse.scalar(f"SELECT count(*) FROM {warehouse.table(schema, name)}")
            tables.append((stream_id, count, *last.get(stream_id, ("", "", "", "", "", ""))))
    finally:
        warehouse.close()

    print("\nSynced into the warehouse:\n")
    header = ("table", "rows", "last sync", "read", "inserted", "updated", "deleted", "cursor")
    print("  {:<26} {:>7}  {:<19} {:>6} {:>8} {:>7} {:>7}  {}".format(*header))
    for stream_id, count, mode, read, inserted, updated, deleted, cursor in tables:
        print(
            f"  {stream_id:<26} {count:>7}  {mode:<19} {read:>6} {inserted:>8} {updated:>7}"
            f" {deleted:>7}  {cursor}"
        )
    print(
        f"\nWarehouse (DuckDB):   {safe_url(url)}"
        f"\nDemo source (SQLite): {demo_db_path()}"
        "\nDemo Salesforce:      a local fake org (data in $DW_HOME/salesforce/)"
        f"\nDemo S3:              bucket {drops.BUCKET} on a local SeaweedFS (data in $DW_HOME/s3/)"
        f"\nDagster home:         {os.environ.get('DAGSTER_HOME', '(temporary)')}"
        f"\n\nQuery it:   .venv/bin/python -c \"import duckdb; print(duckdb.connect('{url}',"
        " read_only=True).sql('FROM demo_shop.orders LIMIT 5'))\""
        "\nSee it:     make dev   (Dagster UI on http://127.0.0.1:3000, runs and lineage)"
        "\nRun again:  make demo  (a day of new orders, synced incrementally)\n"
    )
    from dw_pipelines.transforms.summary import print_marts

    print_marts(url)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dw_pipelines.demo")
    parser.add_argument("command", choices=["prepare", "run", "summary", "stop-s3"])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare()
    elif args.command == "summary":
        summary()
    elif args.command == "run":
        command = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        sys.exit(run_with_demo_services(command))
    else:
        print("stopped" if s3_server.stop_recorded(s3_dir()) else "not running")


if __name__ == "__main__":
    main()
