"""dead_run_sensor's test of a run's process: it exists, is no zombie, and is not a younger
process that was given the dead one's pid."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from dw_pipelines.dead_runs import process_alive


def test_a_running_process_started_before_the_run_is_alive() -> None:
    assert process_alive(os.getpid(), started_by=time.time())


def test_a_process_that_exited_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid, started_by=time.time())


def test_an_exited_process_not_yet_reaped_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Exited, and a zombie until Popen reaps it (polled, not waited for: waiting reaps).
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        assert not process_alive(child.pid, started_by=time.time())
    finally:
        child.wait()


def test_a_process_younger_than_the_run_holds_a_reused_pid() -> None:
    created = psutil.Process(os.getpid()).create_time()
    assert not process_alive(os.getpid(), started_by=created - 60)
