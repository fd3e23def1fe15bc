"""Benchmark: a Salesforce object through Bulk API 2.0 from the local fake org into DuckDB.

Prints figures; asserts nothing. The fake org runs in its own process; each measured step runs
in a child process, so wall time and peak RSS (os.wait4's ru_maxrss) are that step's alone.

    .venv/bin/python bench/salesforce.py                      # 200k accounts
    .venv/bin/python bench/salesforce.py --sizes 50000,200000  # RSS flat in the record count

reference: the same Bulk 2.0 job's result pages fetched with plain `requests` and discarded
(create job, poll, GET results with Sforce-Locator until null).
engine: `sync_stream` full refresh with SalesforceSource (bulk_threshold=1) into DuckDB.
Target (issue 4): engine at most 1.5x the reference; peak RSS flat in the record count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOQL_FIELDS = None  # the engine's column list, so both fetch exactly the same pages


def reference(domain: str, ca: str, soql: str) -> None:
    """Log in (SOAP), run one Bulk 2.0 query job, fetch every page, keep nothing."""
    import requests

    from dw_pipelines.devservices.salesforce_fake import FakeOrg

    org = FakeOrg()
    http = requests.Session()
    http.trust_env, http.verify = False, ca
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope'
        ' xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        '<n1:login xmlns:n1="urn:partner.soap.sforce.com">'
        f"<n1:username>{org.username}</n1:username>"
        f"<n1:password>{org.password}{org.security_token}</n1:password></n1:login></env:Body>"
        "</env:Envelope>"
    )
    started = time.monotonic()
    login = http.post(
        f"https://{domain}.salesforce.com/services/Soap/u/62.0",
        data=body,
        headers={"content-type": "text/xml", "SOAPAction": "login"},
    ).text
    session = login.split("<sessionId>")[1].split("</sessionId>")[0]
    base = login.split("<serverUrl>")[1].split("/services/")[0]
    http.headers["Authorization"] = f"Bearer {session}"
    jobs = f"{base}/services/data/v62.0/jobs/query"
    job = http.post(jobs, json={"operation": "query", "query": soql}).json()
    while http.get(f"{jobs}/{job['id']}").json()["state"] != "JobComplete":
        time.sleep(0.05)
    records, locator = 0, ""
    while True:
        params = {"maxRecords": 50000} | ({"locator": locator} if locator else {})
        page = http.get(f"{jobs}/{job['id']}/results", params=params)
        records += int(page.headers["Sforce-NumberOfRecords"])
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    print(json.dumps({"records": records, "wall_s": time.monotonic() - started}))


def engine(domain: str, ca: str, warehouse: str) -> None:
    from dw_pipelines.devservices.salesforce_fake import FakeOrg
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.salesforce import (
        SalesforceAuth,
        SalesforceSettings,
        SalesforceSource,
    )
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    org = FakeOrg()
    auth = SalesforceAuth(
        username=org.username, password=org.password, security_token=org.security_token
    )
    settings = SalesforceSettings(
        domain=domain, ca_bundle=ca, bulk_threshold=1, bulk_poll_seconds=0.05
    )
    source, target = SalesforceSource(auth, settings), open_warehouse(warehouse)
    started = time.monotonic()
    spec = StreamSpec(source="salesforce", object="Account", primary_key=("Id",))
    result = sync_stream(spec, source, target)
    print(json.dumps({"records": result.rows_read, "wall_s": time.monotonic() - started}))


def measured(*args: str) -> tuple[dict[str, float], float]:
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    out = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"{args[0]} failed")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def run(records: int, workdir: Path) -> list[tuple[str, int, float, float]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "dw_pipelines.devservices.salesforce_fake", "--dir", str(workdir),
         "--bench", str(records)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        ready = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        domain, ca = ready["domain"], ready["ca_bundle"]
        from dw_pipelines.devservices.salesforce_fake import FakeOrg
        from dw_pipelines.sync.sources.salesforce import logical_column

        columns = [c for c in map(logical_column, FakeOrg().fields("Account")) if c is not None]
        soql = f"SELECT {', '.join(c.name for c in columns)} FROM Account ORDER BY Id"
        rows = []
        for case, args in (
            ("reference (requests, pages discarded)", ("reference", domain, ca, soql)),
            ("engine (Bulk 2.0 -> DuckDB)", ("engine", domain, ca, str(workdir / "wh.duckdb"))),
        ):
            figures, rss = measured(*args)
            rows.append((case, int(figures["records"]), figures["wall_s"], rss))
        return rows
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "reference":
        return reference(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "engine":
        return engine(*sys.argv[2:5])
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200000")
    args = parser.parse_args()
    print(f"{'case':<40} {'records':>8} {'wall s':>7} {'rec/s':>9} {'peak RSS MiB':>13}")
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(size, Path(tmp))
        for case, records, wall, rss in rows:
            print(f"{case:<40} {records:>8} {wall:>7.2f} {records / wall:>9.0f} {rss:>13.0f}")
        ratio = rows[1][2] / rows[0][2]
        print(f"{'engine / reference':<40} {'':>8} {ratio:>7.2f}x\n")


if __name__ == "__main__":
    main()
