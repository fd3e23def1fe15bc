"""`python -m dw_pipelines.demo prepare|run|summary|stop-s3`: the steps of `make demo`.

prepare: builds the demo shop's SQLite database on the first run, and on every later run
simulates a day of business in it, so the next sync has changes to pick up incrementally.
It also starts the demo's local S3 server (SeaweedFS, kept running under .dw/s3 for the next
runs and `make dev`), lands the day's files in it, and writes the project's `.env`, so the
README's commands run from a plain shell.
It charges the orders the shop's day made chargeable in the demo's Stripe-like API (its data
under .dw/stripe).
run [--progress] -- CMD: runs CMD with the demo's services up and their variables set: the S3
server, the Salesforce fake org and the Stripe-like API (both started for the command, stopped
after it); with
--progress, Dagster's log lines are shortened to their time and message.
summary: prints each synced table, its row count and what the last run did, and where
everything lives.
stop-s3: stops the demo's S3 server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from dw_pipelines import settings
from dw_pipelines.demo import drops, localenv, payments, shop
from dw_pipelines.demo import summary as tables_summary
from dw_pipelines.devservices import s3_server
from dw_pipelines.sync.redact import safe_url
from dw_pipelines.sync.warehouses import DEFAULT_WAREHOUSE_URL, open_warehouse

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
    charges = payments.charge_orders(path, payments.stripe_dir() / "charges.json")
    print(f"demo Stripe: {charges} new charges of the shop's orders")
    server = s3_server.ensure_running(s3_dir())
    landed = drops.seed(server.client())
    print(f"demo S3 ({server.endpoint_url}): bucket {drops.BUCKET}: {landed}")
    localenv.write(localenv.ENV_FILE, localenv.current_settings(), server.env())
    print(f"settings for the dagster and dg commands: {localenv.ENV_FILE.resolve()}")


def s3_dir() -> Path:
    return Path(os.environ.get("DW_HOME", ".dw")) / "s3"


def run_with_demo_services(command: list[str]) -> int:
    """Run `command` with the S3 server, the Salesforce fake org and the Stripe-like API up,
    their variables set."""
    from dw_pipelines.demo.salesforce import run_with_fake_org

    os.environ.update(s3_server.ensure_running(s3_dir()).env())
    with payments.stripe_api(payments.stripe_dir()) as variables:
        print(f"demo Stripe: API at {variables['DW_STRIPE_BASE_URL']}")
        os.environ.update(variables)
        return run_with_fake_org(command)


def summary(port: int) -> None:
    url = os.environ.get(settings.WAREHOUSE_URL_ENV) or DEFAULT_WAREHOUSE_URL
    warehouse = open_warehouse(url)
    try:
        tables = tables_summary.tables(warehouse)
    finally:
        warehouse.close()

    print("\nSynced into the warehouse (figures: what each table's last run did):\n")
    print("\n".join(tables_summary.render(tables)))
    checks = tables_summary.check_lines([t.stream_id for t in tables])
    if checks:
        print("\n" + "\n".join(checks))
    print(
        f"\nWarehouse (DuckDB):   {safe_url(url)}"
        f"\nDemo source (SQLite): {demo_db_path()}"
        "\nDemo Salesforce:      a local fake org (data in $DW_HOME/salesforce/)"
        "\nDemo Stripe:          a local Stripe-like API charging the shop's orders"
        " (data in $DW_HOME/stripe/)"
        f"\nDemo S3:              bucket {drops.BUCKET} on a local SeaweedFS (data in $DW_HOME/s3/)"
        f"\nDagster home:         {os.environ.get('DAGSTER_HOME', '(temporary)')}"
        f"\nSettings:             {localenv.ENV_FILE.resolve()} (read by the dagster and dg commands)"
        f"\n\nQuery it:   .venv/bin/python -c \"import duckdb; print(duckdb.connect('{url}',"
        " read_only=True).sql('FROM demo_shop.orders LIMIT 5'))\""
        f"\nSee it:     make dev   (Dagster UI on http://127.0.0.1:{port}, runs and lineage)"
        "\nRun again:  make demo  (a day of new orders, synced incrementally)\n"
    )
    from dw_pipelines.transforms.summary import print_marts

    print_marts(url)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dw_pipelines.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare")
    run = commands.add_parser("run")
    run.add_argument("--progress", action="store_true", help="shorten Dagster's log lines")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD...")
    commands.add_parser("summary").add_argument("--port", type=int, default=3000)
    commands.add_parser("stop-s3")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare()
    elif args.command == "summary":
        summary(args.port)
    elif args.command == "run":
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if args.progress:
            command = [sys.executable, "-m", "dw_pipelines.demo.progress", *command]
        sys.exit(run_with_demo_services(command))
    else:
        print("stopped" if s3_server.stop_recorded(s3_dir()) else "not running")


if __name__ == "__main__":
    main()
