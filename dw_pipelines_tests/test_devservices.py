"""The local services the demo and tests start: the S3 server stops its own server and nothing
else; the fake APIs stop when told to, whatever signals their parent ignored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dw_pipelines.devservices import s3_server


def test_stop_never_signals_a_process_that_took_over_the_recorded_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        # As after a reboot: the recorded pid now belongs to some other process.
        (tmp_path / s3_server.STATE_FILE).write_text(json.dumps({"pid": bystander.pid}))

        assert s3_server.stop_recorded(tmp_path) is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_the_recorded_server_is_reused_and_then_stopped(tmp_path: Path) -> None:
    server = s3_server.ensure_running(tmp_path)
    assert server.process is not None
    try:
        again = s3_server.ensure_running(tmp_path)
        assert (again.pid, again.endpoint_url) == (server.pid, server.endpoint_url)

        assert s3_server.stop_recorded(tmp_path) is True
        assert server.process.wait(timeout=30) is not None
        assert s3_server.stop_recorded(tmp_path) is False
    finally:
        server.stop()


def _ignore_stop_signals() -> None:
    # What a child of a background shell (SIGINT ignored) under Dagster (SIGTERM mapped to
    # SIGINT's handler) inherits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@pytest.mark.parametrize("fake", ["rest_fake", "salesforce_fake"])
def test_a_fake_api_stops_on_terminate_even_when_its_parent_ignored_the_signal(
    fake: str, tmp_path: Path
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", f"dw_pipelines.devservices.{fake}", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_stop_signals,
    )
    try:
        assert server.stdout is not None and server.stdout.readline()  # serving

        server.terminate()

        assert server.wait(timeout=10) == -signal.SIGTERM
    finally:
        server.kill()
        server.wait()
