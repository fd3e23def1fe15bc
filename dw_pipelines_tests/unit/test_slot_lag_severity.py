"""Slot-lag severity: the replication slot check passes, warns or fails on bytes or on age."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from dw_pipelines.ingest.cdc import CdcSettings, slot_lag_severity

SETTINGS = CdcSettings(
    lag_warn_bytes=100,
    lag_fail_bytes=1000,
    lag_warn_age=timedelta(minutes=15),
    lag_fail_age=timedelta(hours=1),
)
PASS = (True, dg.AssetCheckSeverity.WARN)
WARN = (False, dg.AssetCheckSeverity.WARN)
FAIL = (False, dg.AssetCheckSeverity.ERROR)


@pytest.mark.parametrize(
    ("lag_bytes", "age_s", "expected"),
    [
        (0, None, PASS),
        (99, 899.0, PASS),
        (100, None, WARN),
        (0, 900.0, WARN),
        (999, 3599.0, WARN),
        (1000, None, FAIL),
        (0, 3600.0, FAIL),
        (1000, 0.0, FAIL),
    ],
)
def test_severity_follows_the_first_threshold_reached(
    lag_bytes: int, age_s: float | None, expected: tuple[bool, dg.AssetCheckSeverity]
) -> None:
    assert slot_lag_severity(SETTINGS, lag_bytes, age_s) == expected
