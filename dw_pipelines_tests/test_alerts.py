"""Failed runs and failed error-severity checks are posted to a Slack-style webhook.

Runs are real materializations of stream assets; the sensors are evaluated on them directly and
post to a local HTTP server that records what it receives.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dw_pipelines.alerts.sensors import asset_check_alert_sensor, run_failure_alert_sensor
from dw_pipelines.alerts.webhook import AlertNotSent
from dw_pipelines.demo import shop
from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.resources.warehouse import WarehouseResource
from dw_pipelines.sync.spec import StreamSpec
from dw_pipelines_tests.webhook_server import WebhookServer

ORDERS = StreamSpec(source="demo_shop", object="orders", mode="incremental_merge",  # type: ignore[arg-type]
                    primary_key=("id",), cursor="updated_at")  # fmt: skip
REFUNDS = StreamSpec(source="demo_shop", object="refunds", mode="full_refresh")  # type: ignore[arg-type]
UI = "https://dagster.example.com/prod"
DAGSTER = str(Path(sys.executable).parent / "dagster")


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    monkeypatch.setenv("DW_ALERT_WEBHOOK_URL", server.url)
    monkeypatch.setenv("DW_UI_BASE_URL", UI + "/")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def shop_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.sqlite"
    shop.build(path)  # read only by the syncs: one for the module
    return path


def shop_resources(shop_path: Path, warehouse: Path) -> dict[str, dg.ConfigurableResource]:
    return {
        source_resource_key("demo_shop"): SqlSourceResource(
            url=f"sqlite:///{shop_path}", name="demo_shop"
        ),
        "warehouse": WarehouseResource(url=str(warehouse)),
    }


@pytest.fixture
def resources(shop_path: Path, tmp_path: Path) -> dict[str, dg.ConfigurableResource]:
    return shop_resources(shop_path, tmp_path / "warehouse.duckdb")


@pytest.fixture(scope="module")
def failed(instance, shop_path: Path, tmp_path_factory) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    """One run in which the orders sync succeeds and the refunds sync fails (no such table)."""
    warehouse = tmp_path_factory.mktemp("failed") / "warehouse.duckdb"
    result = run(
        instance,
        shop_resources(shop_path, warehouse),
        build_stream_asset(ORDERS, source_kind="sqlite"),
        build_stream_asset(REFUNDS, source_kind="sqlite"),
    )
    assert not result.success
    return result


def run(instance, resources, *assets, **kwargs) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    return dg.materialize(
        list(assets), resources=resources, instance=instance, raise_on_error=False, **kwargs
    )


def evaluate(sensor, instance, result: dg.ExecuteInProcessResult):  # type: ignore[no-untyped-def]
    """The sensor's evaluation of a run that ended, as the daemon makes it."""
    event = result.get_run_failure_event() if not result.success else result.get_run_success_event()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        context=dg.build_sensor_context(instance=instance),
    )
    return sensor(context)


def message_text(body: dict) -> str:
    return json.dumps(body["blocks"])


def test_a_failed_run_posts_its_job_failed_asset_error_and_link_in_slacks_shape(
    webhook: WebhookServer, instance, failed
) -> None:
    result = failed

    evaluate(run_failure_alert_sensor, instance, result)

    [post] = webhook.posts
    assert post.path.endswith(webhook.token)
    assert post.content_type == "application/json"
    assert set(post.body) == {"text", "blocks"}
    assert post.body["text"].startswith("Run failed: __ephemeral_asset_job__: demo_shop/refunds: ")
    section, context = post.body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    lines = section["text"]["text"].splitlines()
    assert lines[0] == "*Run failed: __ephemeral_asset_job__*"
    assert len(lines) == 2  # the orders sync succeeded: only the failed asset is listed
    assert lines[1].startswith("• demo_shop/refunds: ") and "refunds" in lines[1][20:]
    assert "Traceback" not in lines[1]
    link = f"<{UI}/runs/{result.run_id}|Open run {result.run_id[:8]}>"
    assert context == {"type": "context", "elements": [{"type": "mrkdwn", "text": link}]}


def test_nothing_is_posted_when_the_webhook_is_unconfigured(
    webhook: WebhookServer, instance, failed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DW_ALERT_WEBHOOK_URL")
    result = failed

    outcome = evaluate(run_failure_alert_sensor, instance, result)

    assert isinstance(outcome, dg.SkipReason)
    assert "DW_ALERT_WEBHOOK_URL is not set" in (outcome.skip_message or "")
    assert webhook.posts == []


def test_an_error_check_failing_in_a_successful_run_posts_an_alert(
    webhook: WebhookServer, instance, resources
) -> None:
    orders = build_stream_asset(ORDERS, source_kind="sqlite")
    run(instance, resources, orders)
    with duckdb.connect(resources["warehouse"].url) as con:
        con.execute("INSERT INTO demo_shop.orders SELECT * FROM demo_shop.orders WHERE id = 42")
    checked = run(
        instance, resources, orders,
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["demo_shop", "orders"])),
    )  # fmt: skip
    assert checked.success  # the key check does not block: the run succeeds

    evaluate(asset_check_alert_sensor, instance, checked)

    [post] = webhook.posts
    text = post.body["blocks"][0]["text"]["text"]
    assert text.splitlines() == [
        "*Asset check failed: __ephemeral_asset_job__*",
        "• demo_shop/orders: check `primary_key_is_unique` failed",
    ]
    assert f"{UI}/runs/{checked.run_id}" in message_text(post.body)


def test_a_successful_run_whose_checks_pass_or_only_warn_posts_nothing(
    webhook: WebhookServer, instance, resources
) -> None:
    @dg.asset_check(asset=dg.AssetKey(["demo_shop", "orders"]))
    def late_rows() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)

    result = run(instance, resources, build_stream_asset(ORDERS, source_kind="sqlite"), late_rows)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "primary_key_is_unique": True,
        "late_rows": False,
    }

    evaluate(asset_check_alert_sensor, instance, result)

    assert webhook.posts == []


def test_no_secret_of_the_environment_reaches_the_message(
    webhook: WebhookServer, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_API_TOKEN", "tok-8f3a9c1e")
    monkeypatch.setenv("APP_DB_URL", "postgresql://app:pw-Secret9@db.internal/app")

    @dg.asset
    def partner_orders() -> None:
        # An error written by code we do not control, quoting what it was given.
        raise RuntimeError(
            f"login refused for token tok-8f3a9c1e at postgresql://app:pw-Secret9@db.internal/app"
            f" (webhook {webhook.url})"
        )

    result = run(instance, {}, partner_orders)
    evaluate(run_failure_alert_sensor, instance, result)

    [post] = webhook.posts
    sent = json.dumps(post.body)
    assert "login refused for token ***" in sent
    for secret in ("tok-8f3a9c1e", "pw-Secret9", webhook.token):
        assert secret not in sent


def test_a_refusing_webhook_is_logged_without_its_url_and_fails_the_tick(
    webhook: WebhookServer, instance, failed, capfd: pytest.CaptureFixture
) -> None:
    webhook.status, webhook.echo_path = 404, True  # its answer quotes the path
    result = failed
    capfd.readouterr()

    with pytest.raises(AlertNotSent) as raised:
        evaluate(run_failure_alert_sensor, instance, result)

    assert len(webhook.posts) == 1
    assert "alert webhook at 127.0.0.1 answered HTTP 404: no_service" in str(raised.value)
    # The sensor's log, as the tick shows it in the UI.
    [logged] = [line for line in capfd.readouterr().err.splitlines() if "alert not posted" in line]
    for shown in (str(raised.value), logged):
        assert webhook.token not in shown and "/services/" not in shown


def test_an_unreachable_webhook_is_reported_without_its_url(
    instance, failed, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DW_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/services/T1/B2/Hid3Token")
    result = failed

    with pytest.raises(
        AlertNotSent, match="alert webhook at 127.0.0.1 could not be reached"
    ) as raised:
        evaluate(run_failure_alert_sensor, instance, result)

    assert "Hid3Token" not in str(raised.value)


def test_a_run_that_fails_after_a_tick_is_posted_on_the_next_one(webhook: WebhookServer) -> None:
    """Through the sensor's own cursor and run matching, as the daemon evaluates it."""

    @dg.asset
    def partner_orders() -> None:
        raise RuntimeError("partner API answered 503")

    with dg.instance_for_test() as instance:
        first = run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        result = run(instance, {}, partner_orders)
        second = run_failure_alert_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )

    assert second.cursor != first.cursor
    [post] = webhook.posts
    assert (
        post.body["text"]
        == "Run failed: __ephemeral_asset_job__: partner_orders: RuntimeError: partner API answered 503"
    )
    assert result.run_id in message_text(post.body)


def test_a_run_started_outside_any_code_location_is_posted_by_the_served_sensor(
    webhook: WebhookServer, tmp_path: Path
) -> None:
    """As deployed: the sensor is evaluated by a code server loading the code location (here
    `dagster sensor preview`, as the daemon would), on a run that carries no code location, as
    runs from `dagster asset materialize` or `dg launch` do. A sensor watching only its own
    location would skip it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "empty.sqlite").touch()
    resources = shop_resources(tmp_path / "empty.sqlite", tmp_path / "warehouse.duckdb")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        failed_run = run(instance, resources, build_stream_asset(REFUNDS, source_kind="sqlite"))
    assert not failed_run.success
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # From the start of the event log: a first tick of the daemon would only set this cursor.
    cursor = '{"__class__": "RunStatusSensorCursor", "record_id": 0, "record_timestamp": null}'

    # Outside the project root, so that no `.env` there overrides this environment.
    preview = subprocess.run(
        [DAGSTER, "sensor", "preview", "run_failure_alert_sensor", "--cursor", cursor,
         "-m", "dw_pipelines.definitions"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert preview.returncode == 0, preview.stderr
    [post] = webhook.posts
    assert post.body["text"].startswith("Run failed: __ephemeral_asset_job__: demo_shop/refunds:")
    assert failed_run.run_id in message_text(post.body)
    assert webhook.token not in preview.stdout + preview.stderr
