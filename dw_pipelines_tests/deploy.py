"""The production deployment in tests: docker/dagster.yaml on a throwaway PostgreSQL database,
and the three processes `make serve` runs (docker/bin/*), each on a free port."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from dw_pipelines_tests.conftest import (
    PG_HOST,
    PG_PORT,
    drop_postgres_database,
    new_postgres_database,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def instance_env(db_name: str, home: Path) -> dict[str, str]:
    """The variables docker/dagster.yaml reads, for the machine's PostgreSQL (trust auth)."""
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_HOST": PG_HOST,
        "DAGSTER_POSTGRES_PORT": str(PG_PORT),
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_PASSWORD": "",
        "DAGSTER_POSTGRES_DB": db_name,
    }


@contextlib.contextmanager
def production_home(prefix: str = "dwt_dagster") -> Iterator[dict[str, str]]:
    """A DAGSTER_HOME holding docker/dagster.yaml and a fresh database for it; yields its env."""
    db_name = new_postgres_database(prefix)
    home = Path(tempfile.mkdtemp(prefix="dagster_home_"))
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    try:
        yield instance_env(db_name, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        drop_postgres_database(db_name)


@contextlib.contextmanager
def production_instance() -> Iterator[dg.DagsterInstance]:
    with production_home() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                yield instance
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# -- the three processes of `make serve` ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 1.0
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g}s")
        time.sleep(every_s)


class Deployment:
    """docker/bin/code-server, webserver and daemon (the images' entrypoints), as `make serve`
    starts them, each logging to a file under `workdir`. Started outside the project root, so
    no `.env` there is read."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.workdir = workdir
        self.webserver_port = free_port()
        self.env = {
            **env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.environ['PATH'])}",
            "PYTHONPATH": str(ROOT),
            "DW_CODE_SERVER_HOST": "127.0.0.1",
            "DW_CODE_SERVER_PORT": str(free_port()),
            "DW_WEBSERVER_PORT": str(self.webserver_port),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *names: str) -> None:
        for name in names or ("code-server", "webserver", "daemon"):
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
            self.processes[name] = subprocess.Popen(
                [str(DOCKER / "bin" / name)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children (run workers, gRPC server) stop with it
            )
            log.close()
            if name == "code-server":
                wait_until("the code server answers", self._code_server_up, 120)
        if "webserver" in self.processes:
            wait_until("the webserver answers", self._webserver_up, 120)

    def stop(self) -> None:
        # The daemon and webserver first: neither then reports the code server gone.
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # What it started in its own session (a gRPC server, a run worker) ends with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def _code_server_up(self) -> bool:
        process = self.processes["code-server"]
        if process.poll() is not None:
            raise AssertionError(f"the code server exited:\n{self.log('code-server')[-3000:]}")
        return (
            subprocess.run(
                [
                    "dagster", "api", "grpc-health-check",
                    "--port", self.env["DW_CODE_SERVER_PORT"],
                ],
                env=self.env,
                cwd=self.workdir,
                capture_output=True,
            ).returncode
            == 0
        )  # fmt: skip

    def _webserver_up(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.webserver_port}/server_info", timeout=5
            ):
                return True
        except OSError:
            return False

    def graphql(self, query: str, **variables: object) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.webserver_port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]
