"""One Dagster webserver on the demo's data, shared by every UI test (GraphQL and browser).

The demo is prepared and run by its own machinery (`python -m dw_pipelines.demo prepare`, then
`all_streams_job` under `python -m dw_pipelines.demo run`, as `make demo` does) in a temporary
DW_HOME, so the webserver shows what a newcomer sees after `make demo` and `make dev`: one
successful run, every asset materialized, row counts in the metadata. Everything is started
outside the project root, whose `.env` would override the test's variables.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Screenshots of the pages the browser tests open (git-ignored).
ARTIFACTS = ROOT / "test-artifacts" / "ui"
WEBSERVER_START_S = 180
INFO_LOGS = '{"loggers": {"console": {"config": {"log_level": "INFO"}}}}'

WORKSPACE_STATUS = """
query { workspaceOrError { __typename ... on Workspace {
  locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message } } } } } }
"""


class GraphQLError(AssertionError):
    pass


@dataclass(frozen=True)
class DemoUi:
    url: str
    env: dict[str, str]
    warehouse_url: str

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a query to the webserver's /graphql, as the UI itself sends it."""
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command[:4]} failed:\n{(done.stdout + done.stderr)[-4000:]}"


def _wait_until_loaded(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until the code location is loaded: /server_info answers before it is."""
    deadline = time.monotonic() + WEBSERVER_START_S
    last: object = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"dagster-webserver exited:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(requests.ConnectionError):
            body = requests.post(f"{url}/graphql", json={"query": WORKSPACE_STATUS}, timeout=10)
            entries = body.json()["data"]["workspaceOrError"]["locationEntries"]
            last = entries
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                failed = [
                    e
                    for e in entries
                    if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                ]
                assert not failed, f"the code location failed to load: {failed}"
                return
        time.sleep(0.25)  # a poll interval, not a wait for an outcome
    raise AssertionError(f"the webserver did not load the code location in time: {last}")


@pytest.fixture(scope="session")
def demo_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoUi]:
    work = tmp_path_factory.mktemp("ui_demo")
    dw_home = work / ".dw"
    home = dw_home / "dagster"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    warehouse_url = str(dw_home / "warehouse.duckdb")
    env = {
        **os.environ,
        "DW_HOME": str(dw_home),
        "DAGSTER_HOME": str(home),
        "DW_WAREHOUSE_URL": warehouse_url,
        "DW_DEMO_SHOP_URL": f"sqlite:///{dw_home / 'demo_shop.sqlite'}",
    }
    demo = [sys.executable, "-m", "dw_pipelines.demo"]
    server: subprocess.Popen[bytes] | None = None
    try:
        began = time.monotonic()
        _run([*demo, "prepare"], env, work)
        # As `make demo`: the partitioned stream's own job, then every other asset.
        for job in ("demo_shop_order_events_job", "all_streams_job"):
            launch = [str(BIN / "dg"), "launch", "--job", job]
            _run([*demo, "run", "--", *launch, "-m", "dw_pipelines.definitions", "--config-json", INFO_LOGS], env, work)  # fmt: skip

        demo_s = time.monotonic() - began
        url = f"http://127.0.0.1:{free_port()}"
        log = work / "webserver.log"
        started = time.monotonic()
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"),
                 "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
                env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_until_loaded(url, server, log)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "fixture-timings.txt").write_text(
            f"demo prepared and all_streams_job run: {demo_s:.1f} s\n"
            f"webserver up with the code location loaded: {time.monotonic() - started:.1f} s\n"
        )
        ui = DemoUi(url, env, warehouse_url)
        # The community sign-up dialog a local UI shows once would cover every page;
        # dismissing it is what its Skip button does.
        ui.graphql("mutation { setNuxSeen }")
        yield ui
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        # The demo's S3 server outlives its commands by design; not this fixture.
        subprocess.run([*demo, "stop-s3"], env=env, cwd=work, capture_output=True)
