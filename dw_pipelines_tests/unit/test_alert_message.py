"""An alert as Slack's incoming-webhook message: pure, no server."""

from __future__ import annotations

from dw_pipelines.alerts.webhook import Alert, environment_secrets, slack_payload, webhook_secrets


def test_markup_characters_in_an_error_show_as_typed() -> None:
    payload = slack_payload(Alert("Run failed: j", ["a/b: value <NULL> & 'x' > 3"]))

    text = payload["blocks"][0]["text"]["text"]  # type: ignore[index]
    assert text.splitlines()[1] == "• a/b: value &lt;NULL&gt; &amp; 'x' &gt; 3"


def test_a_long_list_is_cut_to_ten_items_and_a_count() -> None:
    payload = slack_payload(Alert("Run failed: j", [f"asset_{i}: boom" for i in range(25)]))

    lines = payload["blocks"][0]["text"]["text"].splitlines()  # type: ignore[index]
    assert lines[1:11] == [f"• asset_{i}: boom" for i in range(10)]
    assert lines[11:] == ["• … and 15 more"]


def test_the_fallback_text_names_the_first_item_and_no_link_block_without_a_link() -> None:
    payload = slack_payload(Alert("Run failed: j", ["x: boom", "y: bang"]))

    assert payload["text"] == "Run failed: j: x: boom"
    assert [b["type"] for b in payload["blocks"]] == ["section"]  # type: ignore[index]


def test_secrets_known_to_the_environment_are_found_by_value_and_by_name() -> None:
    found = environment_secrets(
        {
            "APP_DB_URL": "postgresql://u:p%40ss-word@h/db",
            "DW_SALESFORCE_SECURITY_TOKEN": "tok123",
            "DW_WAREHOUSE_URL": ".dw/warehouse.duckdb",
            "HOME": "/root",
        }
    )

    assert {"p@ss-word", "p%40ss-word", "tok123"} <= set(found)
    assert "/root" not in found and ".dw/warehouse.duckdb" not in found


def test_a_webhook_url_is_secret_whole_and_by_its_path_token() -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/XyZ9secret"

    assert {url, "/services/T0001/B0002/XyZ9secret", "XyZ9secret"} <= set(webhook_secrets(url))
    assert "hooks.slack.com" not in webhook_secrets(url)
