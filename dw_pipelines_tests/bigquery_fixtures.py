"""The BigQuery emulator, started once per test session as its own server (see
dw_pipelines/devservices/bigquery_emulator.py), and a fresh dataset prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dw_pipelines.devservices.bigquery_emulator import BigQueryEmulator, start_emulator


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    emulator = start_emulator(Path(tmp_path_factory.mktemp("bqemulator")))
    yield emulator
    emulator.stop()


@pytest.fixture
def bigquery_warehouse_url(bigquery_emulator: BigQueryEmulator) -> str:
    """A warehouse URL on the emulator whose datasets no other test uses."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return f"bigquery://{bigquery_emulator.project}/{prefix}?endpoint={bigquery_emulator.endpoint}"
