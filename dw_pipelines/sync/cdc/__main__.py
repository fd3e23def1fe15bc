"""Replication slot housekeeping, for when a source is removed from the catalog or inspected.

    python -m dw_pipelines.sync.cdc status --source shop --url-env SHOP_PG_URL
    python -m dw_pipelines.sync.cdc drop   --source shop --url-env SHOP_PG_URL

The URL is read from the named environment variable, so no password reaches the shell history.
A slot left behind by a removed source keeps every WAL segment since its last confirmation:
drop it.
"""

from __future__ import annotations

import argparse
import os
import sys

from dw_pipelines.sync.cdc.pg_replication import PgReplication
from dw_pipelines.sync.cdc.pgoutput import lsn_text
from dw_pipelines.sync.errors import SyncError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dw_pipelines.sync.cdc", description=__doc__)
    parser.add_argument("command", choices=["status", "drop"])
    parser.add_argument("--source", required=True, help="the source's name in the catalog")
    parser.add_argument("--url-env", required=True, help="env var holding the PostgreSQL URL")
    parser.add_argument("--slot", help="slot name, if not dw_<source>")
    parser.add_argument("--publication", help="publication name, if not dw_<source>")
    args = parser.parse_args(argv)
    url = os.environ.get(args.url_env)
    if not url:
        parser.error(f"environment variable {args.url_env} is not set")
    repl = PgReplication(url, args.source, args.slot, args.publication)
    try:
        info = repl.slot_info()
        if args.command == "status":
            if info is None:
                print(f"slot {repl.slot}: does not exist")
            else:
                age = None if info.active else repl.lag_age_s()
                print(
                    f"slot {repl.slot}: confirmed {lsn_text(info.confirmed_lsn)},"
                    f" lag {info.lag_bytes:,} bytes, retains {info.retained_bytes:,} bytes"
                    " of WAL, oldest pending change"
                    f" {'none' if age is None else f'{age:.0f} s old'},"
                    f" wal_status {info.wal_status}, {'active' if info.active else 'idle'}"
                )
            print(
                f"publication {repl.publication}: {'exists' if repl.publication_exists() else 'does not exist'}"
            )
            return 0
        if info is not None and info.active:
            print(
                f"slot {repl.slot} is being read by a running sync; stop it first", file=sys.stderr
            )
            return 1
        dropped_slot = repl.drop_slot()
        dropped_publication = repl.drop_publication()
        print(f"slot {repl.slot}: {'dropped' if dropped_slot else 'did not exist'}")
        print(
            f"publication {repl.publication}: {'dropped' if dropped_publication else 'did not exist'}"
        )
        return 0
    except SyncError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        repl.close()


if __name__ == "__main__":
    sys.exit(main())
