"""The demo's Salesforce: the dev-services fake org, served over HTTPS while a command runs.

Its data persists in `$DW_HOME/salesforce/`: the first run seeds realistic accounts, contacts,
opportunities and leads; every later run is a day later (new leads, deals moving on, a contact
deleted), so the incremental syncs and soft deletes have something to show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def fake_org(home: Path) -> Iterator[dict[str, str]]:
    """Start the fake org on a free port; yield the DW_SALESFORCE_* variables the YAML names."""
    from dw_pipelines.devservices.salesforce_fake import FakeOrg

    server = subprocess.Popen(
        [sys.executable, "-m", "dw_pipelines.devservices.salesforce_fake", "--dir", str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise SystemExit("the demo's Salesforce fake did not start")
        ready = json.loads(line)
        org = FakeOrg()  # its default credentials are the fake's
        yield {
            "DW_SALESFORCE_USERNAME": ready["username"],
            "DW_SALESFORCE_PASSWORD": org.password,
            "DW_SALESFORCE_SECURITY_TOKEN": org.security_token,
            "DW_SALESFORCE_DOMAIN": ready["domain"],
            "DW_SALESFORCE_CA_BUNDLE": ready["ca_bundle"],
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_with_fake_org(command: list[str]) -> int:
    """Run `command` with the fake org up and its variables set; return its exit status."""
    home = Path(os.environ.get("DW_HOME", ".dw")) / "salesforce"
    with fake_org(home) as variables:
        print(f"demo Salesforce: fake org at https://{variables['DW_SALESFORCE_DOMAIN']}")
        return subprocess.call(command, env={**os.environ, **variables})
