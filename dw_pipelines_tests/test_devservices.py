"""The local S3 server the demo keeps running: it stops its own server and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
