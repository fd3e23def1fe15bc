"""Two code-location-wide sensors that tell people when something broke.

`run_failure_alert_sensor` posts one message per failed run: the job, each failed step with the
assets it did not materialize and its error's first line, the error-severity checks that failed,
and a link to the run. `asset_check_alert_sensor` posts one per successful run in which an
error-severity check failed (a non-blocking check fails without failing its run): the checks of
failed runs are already in that run's failure message, so each failure is told once.

Both run by default and post nothing until `DW_ALERT_WEBHOOK_URL` is set. A delivery that fails
is logged (without the URL) and fails the tick, so it shows in the UI instead of vanishing.
"""

from __future__ import annotations

import dagster as dg

from dw_pipelines import settings
from dw_pipelines.alerts.webhook import (
    Alert,
    AlertNotSent,
    environment_secrets,
    post,
    slack_payload,
    webhook_secrets,
)

RUN_FAILURE_SENSOR = "run_failure_alert_sensor"
CHECK_SENSOR = "asset_check_alert_sensor"


# Every code location: runs started from a terminal (`dagster asset materialize`, `dg launch`)
# carry no code-location origin, and a sensor watching only its own location never sees them.
@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts each failed run (job, failed steps and assets, the error's first line, a link)"
        " to the webhook in DW_ALERT_WEBHOOK_URL; nothing while it is unset."
    ),
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
    return _send(context, failure_alert(context))


@dg.run_status_sensor(
    name=CHECK_SENSOR,
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts the error-severity asset checks that failed in a successful run to the webhook in"
        " DW_ALERT_WEBHOOK_URL (failed runs carry theirs in the run-failure alert)."
    ),
)
def asset_check_alert_sensor(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    failed = failed_error_checks(context.instance, context.dagster_run.run_id)
    if not failed:
        return None
    alert = Alert(
        f"Asset check failed: {context.dagster_run.job_name}",
        failed,
        run_link(context.dagster_run.run_id),
        f"Open run {context.dagster_run.run_id[:8]}",
    )
    return _send(context, alert)


def alert_sensors() -> list[dg.SensorDefinition]:
    return [run_failure_alert_sensor, asset_check_alert_sensor]


def run_link(run_id: str) -> str:
    return f"{settings.ui_base_url()}/runs/{run_id}"


def failure_alert(context: dg.RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    # Planned but not materialized: OSS event storage keeps no "failed to materialize" event.
    planned, done = (
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    )
    events = [
        e.dagster_event
        for e in context.instance.all_logs(run.run_id, of_type={planned, done})
        if e.dagster_event is not None and e.dagster_event.asset_key is not None
    ]
    materialized = {e.asset_key for e in events if e.event_type == done}
    assets_by_step: dict[str | None, list[str]] = {}
    for event in events:
        if event.event_type == planned and event.asset_key not in materialized:
            key = event.asset_key.to_user_string()  # type: ignore[union-attr]
            assets_by_step.setdefault(event.step_key, []).append(key)
    items = []
    for event in context.get_step_failure_events():
        failed = assets_by_step.pop(event.step_key, None)
        items.append(f"{', '.join(failed) if failed else event.step_key}: {step_error(event)}")
    if not items:  # the run failed outside its steps (launch, run worker, cancelation)
        items.append(_first_line(context.failure_event.message or "the run failed"))
    not_run = sorted({key for keys in assets_by_step.values() for key in keys})
    if not_run:
        items.append(f"not materialized (upstream failed): {', '.join(not_run)}")
    items += failed_error_checks(context.instance, run.run_id)
    return Alert(
        f"Run failed: {run.job_name}", items, run_link(run.run_id), f"Open run {run.run_id[:8]}"
    )


def step_error(event: dg.DagsterEvent) -> str:
    """The first line of what the step raised, as its author wrote it (a `dg.Failure`'s
    description, else the user exception inside Dagster's wrappers)."""
    data = event.event_specific_data
    described = getattr(getattr(data, "user_failure_data", None), "description", None)
    if described:
        return _first_line(described)
    error = getattr(data, "error", None)
    if error is None:
        return "failed"
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return _first_line(error.message or error.cls_name or "failed")


def failed_error_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per ERROR-severity check that failed in the run, naming asset and check."""
    failed = []
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION}):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if (
            isinstance(evaluation, dg.AssetCheckEvaluation)
            and not evaluation.passed
            and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ):
            line = (
                f"{evaluation.asset_key.to_user_string()}: check `{evaluation.check_name}` failed"
            )
            if evaluation.description:
                line += f": {_first_line(evaluation.description)}"
            failed.append(line)
    return failed


def _send(context: dg.RunStatusSensorContext, alert: Alert) -> dg.SkipReason | None:
    url = settings.alert_webhook_url()
    if url is None:
        return dg.SkipReason(f"{settings.ALERT_WEBHOOK_URL_ENV} is not set: no alert posted")
    secrets = (*webhook_secrets(url), *environment_secrets())
    try:
        post(url, slack_payload(alert, secrets))
    except AlertNotSent as exc:
        context.log.error(f"{alert.title}: alert not posted: {exc}")
        raise
    context.log.info(f"{alert.title}: alert posted")
    return None


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""
