"""Runs whose process is gone are marked failed, so they stop holding the run queue.

A run started by `dagster asset materialize`, or launched as a subprocess of the code server
(Dagster's default run launcher), has nobody watching it: killed with SIGKILL or by the OOM
killer, it stays STARTED in the instance forever, and four such runs fill `max_concurrent_runs`
so the daemon launches nothing again (schedules, sensors and UI launches all wait). Run
monitoring only watches workers its run launcher can ask about (Docker, Kubernetes); the
default launcher cannot be asked. This sensor asks the operating system instead: the pid that
started the run (its RUN_START event) no longer exists, is a zombie, or is another process that
started after the run did (the pid was reused).

It assumes what the default launcher and a terminal's CLI runs share: the run's process lives
on the host of the code server that evaluates the sensor (`make dev`, `make serve`). Where the
instance's launcher can check workers itself (docker-compose, Helm), the sensor leaves every run
to run monitoring, since those runs live in other containers. Dagster records no host with a
run, so CLI runs started on another machine against a shared instance would look dead here:
such a deployment stops this sensor (the README says so).
"""

from __future__ import annotations

import dagster as dg

from dw_pipelines import settings

# The process started a little after the run's start time was taken: allow clock rounding.
START_TIME_SLACK_S = 2.0


def dead_run_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="dead_run_sensor",
        minimum_interval_seconds=settings.dead_run_interval_s(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks failed a STARTED run whose process is gone (killed, crashed), so it stops"
            " counting against the instance's concurrent-run limit."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        instance = context.instance
        if instance.run_launcher.supports_check_run_worker_health:
            return dg.SkipReason("the run launcher checks run workers (run monitoring)")
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        )
        failed = []
        for record in records:
            pid = start_pid(instance, record.dagster_run.run_id)
            if pid is None or record.start_time is None:
                continue
            if not process_alive(pid, started_by=record.start_time):
                instance.report_run_failed(
                    record.dagster_run,
                    f"The run's process (pid {pid}) is gone: it was killed or crashed."
                    " Marked failed by dead_run_sensor; rerun it (its syncs resume from"
                    " their committed cursors).",
                )
                failed.append(record.dagster_run.run_id)
        if failed:
            context.log.warning(f"marked failed, their process gone: {', '.join(failed)}")
            return dg.SkipReason(f"marked {len(failed)} run(s) failed: {', '.join(failed)}")
        return dg.SkipReason(f"all {len(records)} started run(s) have their process")

    return _sensor


def start_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started the run: the one its RUN_START event came from."""
    connection = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    )
    for record in connection.records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return event.pid
    return None


def process_alive(pid: int, *, started_by: float) -> bool:
    """Whether process `pid` runs and was started no later than `started_by` (a timestamp)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= started_by + START_TIME_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process of that pid: it exists, we cannot say more
