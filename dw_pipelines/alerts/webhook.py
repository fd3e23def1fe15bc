"""An alert as Slack's incoming-webhook message, and its delivery. No Dagster here.

The webhook URL is itself a secret (whoever holds it can post to the channel): it is used, never
shown. Delivery errors name the host only, and every message sent or raised is scrubbed of the
secrets the environment holds, since an alert quotes error text that we did not write.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TIMEOUT_S = 10
MAX_ITEMS = 10  # a concise message: the rest is a link away
MAX_TEXT = 2900  # Slack refuses a section's text above 3,000 characters
# Environment variables whose values are secrets by their name (keys, tokens, passwords).
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|API_KEY|_KEY$")


class AlertNotSent(Exception):
    """The webhook refused the alert or could not be reached; the message is safe to show."""


@dataclass(frozen=True)
class Alert:
    title: str  # e.g. "Run failed: all_streams_job"
    items: Sequence[str] = field(default_factory=list)  # one line each: an asset, step or check
    link: str | None = None  # the run in the UI
    link_text: str = "Open the run"


def slack_payload(alert: Alert, secrets: Sequence[str] = ()) -> dict[str, object]:
    """`{"text", "blocks"}`: `text` is the notification's plain fallback, `blocks` the message."""
    from dw_pipelines.sync.redact import redact  # (SQLAlchemy: kept out of definitions loading)

    items = [redact(i, secrets=tuple(secrets)) for i in alert.items]
    shown = items[:MAX_ITEMS]
    if len(items) > MAX_ITEMS:
        shown.append(f"… and {len(items) - MAX_ITEMS} more")
    body = "\n".join(f"• {_escape(i)}" for i in shown)
    text = f"*{_escape(alert.title)}*" + (f"\n{body}" if body else "")
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    ]
    if alert.link:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{alert.link}|{alert.link_text}>"}],
            }
        )
    fallback = alert.title + (f": {items[0]}" if items else "")
    return {"text": _escape(redact(fallback, secrets=tuple(secrets)))[:MAX_TEXT], "blocks": blocks}


def post(url: str, payload: Mapping[str, object]) -> None:
    """POST the message as JSON; raises `AlertNotSent` naming the host and status only."""
    from dw_pipelines.sync.redact import redact

    host = urlsplit(url).hostname or "the webhook"
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    secrets = webhook_secrets(url)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        answer = exc.read(300).decode(errors="replace").strip()
        raise AlertNotSent(
            redact(f"alert webhook at {host} answered HTTP {exc.code}: {answer}", secrets=secrets)
        ) from None
    # The cause is dropped: urllib's errors and their tracebacks may carry the URL.
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AlertNotSent(
            redact(f"alert webhook at {host} could not be reached: {reason}", secrets=secrets)
        ) from None


def webhook_secrets(url: str) -> tuple[str, ...]:
    """The webhook URL, its path and query, and each path segment long enough to be a token."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if len(s) >= 6]
    return tuple(s for s in (url, parts.path, parts.query, *segments) if s and s != "/")


def environment_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Secrets this process knows: credentials of every URL in the environment, and the values
    of variables named as secrets. An alert quoting an error is scrubbed of all of them."""
    from dw_pipelines.sync.urls import url_secrets

    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if "://" in value:
            found |= set(url_secrets(value))
        elif _SECRET_NAME.search(name.upper()) and len(value) >= 4:
            found.add(value)
    return tuple(sorted(found, key=len, reverse=True))


def _escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup: sent as entities, they show as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
