"""Which failures are worth retrying: a passing fault (network, lock, time-out), not bad data.

The production instance (docker/dagster.yaml) retries failed runs with
`retry_on_asset_or_op_failure: false`: a run whose worker crashed is retried, a run failed by an
asset is not, since most asset failures are bad data (schema drift, NULL cursors, duplicate
keys) that a rerun fails on again. An asset that fails for a transient reason says so by tagging
its run before it fails; Dagster reads the run's tags when it records the failure and decides
then. A retried sync starts from its committed cursor, so a retry never duplicates a row.
"""

from __future__ import annotations

import dagster as dg

from dw_pipelines.sync.errors import (
    BadUrl,
    CursorNullError,
    DataConversionError,
    DuplicateKeyError,
    ReplicationNotReady,
    ReplicationSlotLost,
    SchemaDriftError,
    SourceObjectMissing,
    SourceUnreachable,
    WarehouseUnreachable,
)

# Dagster's own tag: it overrides the instance's `retry_on_asset_or_op_failure` for one run.
RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"
TRANSIENT_TAG = "dw/transient_failure"
# What a rerun meets again, whatever the error was raised while handling.
NEVER_TRANSIENT = (
    BadUrl,
    CursorNullError,
    DataConversionError,
    DuplicateKeyError,
    ReplicationNotReady,
    ReplicationSlotLost,
    SchemaDriftError,
    SourceObjectMissing,
)


def is_transient(exc: BaseException) -> bool:
    """True for a fault that a later attempt may not meet: the source or warehouse unreachable
    (DuckDB's file lock held past its wait included), a dropped connection, a time-out, a lock
    or deadlock the database gave up on. The exception and its causes are looked at."""
    if isinstance(exc, NEVER_TRANSIENT):
        return False
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _transient_types()):
            return True
        current = current.__cause__ or current.__context__
    return False


def mark_run_retryable(context: dg.AssetExecutionContext, exc: BaseException) -> None:
    """Before an asset re-raises `exc`: if it is transient, let the instance retry the run."""
    if not is_transient(exc):
        return
    context.instance.add_run_tags(
        context.run.run_id, {RETRY_ON_FAILURE_TAG: "true", TRANSIENT_TAG: type(exc).__name__}
    )


def _transient_types() -> tuple[type[BaseException], ...]:
    # Drivers' connection-level errors; imported here so loading definitions imports no driver.
    import botocore.exceptions
    import psycopg
    import pymysql
    import sqlalchemy.exc

    return (
        SourceUnreachable,
        WarehouseUnreachable,
        ConnectionError,
        TimeoutError,
        psycopg.OperationalError,  # lock not available, deadlock, statement time-out, no server
        pymysql.err.OperationalError,
        # A pool time-out; not sqlalchemy.exc.OperationalError: SQLite raises it for a missing
        # column too (a driver's own transient error is found as the wrapper's cause).
        sqlalchemy.exc.TimeoutError,
        # S3: no connection, or one that broke or timed out (not a refusal: ClientError)
        botocore.exceptions.HTTPClientError,
        botocore.exceptions.ConnectionError,
    )
