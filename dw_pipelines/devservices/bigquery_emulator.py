"""A local BigQuery emulator (PyPI `bqemulator`) for the tests and the bench, as its own server.

The emulator lives in its own virtualenv (`.venv-bqemulator`, made by `make install` from
`bqemulator-requirements.txt`): it needs duckdb 1.5.5 and the project pins duckdb 2.x. DuckDB
would download its `spatial` and `avro` extensions at start-up and the emulator exits when it
cannot; the repackaged extension wheels of the same version hold them, and `install-extensions`
(run by that venv's own Python, so this file imports nothing beyond the standard library at
module level) copies them where DuckDB looks: `<venv>/duckdb-home/.duckdb/extensions/...`, with
HOME pointed at `<venv>/duckdb-home` when the emulator starts.

The emulator is not BigQuery; what it is known to do differently is listed in the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-bqemulator"
VENV_ENV = "DW_BQEMULATOR_VENV"
PROJECT = "dw-test"
START_TIMEOUT_S = 60.0


def emulator_venv() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def duckdb_home(venv: Path) -> Path:
    return venv / "duckdb-home"


def install_extensions(venv: Path) -> list[Path]:
    """Copy the extension wheels' files into DuckDB's extension directory under `venv`.
    Run with the emulator venv's Python (it imports that venv's duckdb)."""
    import duckdb  # the emulator venv's duckdb 1.5.5

    version = "v" + duckdb.__version__
    platform = duckdb.execute("PRAGMA platform").fetchone()[0]  # type: ignore[index]
    target = duckdb_home(venv) / ".duckdb" / "extensions" / version / platform
    target.mkdir(parents=True, exist_ok=True)
    site = Path(duckdb.__file__).resolve().parents[1]
    copied = []
    for found in site.glob(f"duckdb_extension_*/extensions/{version}/*.duckdb_extension"):
        copied.append(Path(shutil.copy2(found, target / found.name)))
    if not copied:
        raise SystemExit(f"no DuckDB {version} extension files found under {site}")
    return copied


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BigQueryEmulator:
    process: subprocess.Popen[bytes]
    endpoint: str  # REST API root, for client_options={"api_endpoint": ...}
    grpc_endpoint: str  # the Storage Read API
    project: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(log_dir: Path, project: str = PROJECT) -> BigQueryEmulator:
    """Start `bqemulator start` in memory on free ports; return once it answers HTTP."""
    venv = emulator_venv()
    binary = venv / "bin" / "bqemulator"
    if not binary.exists():
        raise RuntimeError(
            f"the BigQuery emulator is not installed at {venv}: run `make install`"
            f" (it builds {venv.name} from dw_pipelines/devservices/bqemulator-requirements.txt)"
        )
    rest_port, grpc_port = free_port(), free_port()
    log_path = log_dir / "bqemulator.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(duckdb_home(venv)),
        "BQEMU_LOG_LEVEL": "WARNING",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "start", "--ephemeral", "--project", project,
             "--rest-host", "127.0.0.1", "--rest-port", str(rest_port),
             "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_dir,
        )  # fmt: skip
    emulator = BigQueryEmulator(
        process, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", project, log_path
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the BigQuery emulator exited with {process.returncode}:"
                f" {log_path.read_text(errors='replace')[-2000:]}"
            )
        try:
            url = f"{emulator.endpoint}/bigquery/v2/projects/{project}/datasets"
            with urllib.request.urlopen(url, timeout=2):
                return emulator
        except OSError:
            time.sleep(0.2)
    emulator.stop()
    raise RuntimeError(f"the BigQuery emulator did not answer within {START_TIMEOUT_S:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["install-extensions"]:
        venv = Path(sys.prefix)
        for path in install_extensions(venv):
            print(f"installed {path.relative_to(venv)}")
    else:
        raise SystemExit("usage: python bigquery_emulator.py install-extensions")
