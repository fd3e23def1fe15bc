"""The BigQuery emulator, started once per test session as its own server (see
dw_pipelines/devservices/bigquery_emulator.py), and a fresh dataset prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dw_pipelines.devservices.bigquery_emulator import (
    BigQueryEmulator,
    emulator_venv,
    start_emulator,
)
from dw_pipelines_tests.conftest import missing_in_ci_fails

# Each request with its retries, and each wait for a job, gives up after this long: the emulator
# answers what it cannot run with a 500, which the client would otherwise retry for 10 minutes.
REQUEST_TIMEOUT_S = 30


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    venv = emulator_venv()
    if not (venv / "bin" / "bqemulator").exists():
        missing_in_ci_fails(f"the BigQuery emulator is not installed at {venv}: run `make install`")
    emulator = start_emulator(Path(tmp_path_factory.mktemp("bqemulator")))
    yield emulator
    emulator.stop()


@pytest.fixture
def bigquery_warehouse_url(bigquery_emulator: BigQueryEmulator) -> str:
    """A warehouse URL on the emulator whose datasets no other test uses."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return (
        f"bigquery://{bigquery_emulator.project}/{prefix}"
        f"?endpoint={bigquery_emulator.endpoint}&timeout={REQUEST_TIMEOUT_S}"
    )
