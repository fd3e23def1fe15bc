"""Keep secrets out of anything we print, log, store as metadata or raise.

Redaction works from what we know to be secret (the credentials of the parsed URL, a key, a
token), never from what a secret usually looks like: a driver that misreads a URL echoes pieces
of it in forms no pattern anticipates.
"""

from __future__ import annotations

from dw_pipelines.sync.urls import display_url, url_secrets


def safe_url(url: str) -> str:
    """The URL with its password replaced by ***, for display."""
    return display_url(url)


def redact(text: str, *urls: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Text with every credential of the given URLs, and every given secret, replaced by ***."""
    known = {s for url in urls for s in url_secrets(url)}
    known |= {s for s in secrets if s}
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def first_line(exc: BaseException) -> str:
    """A driver error's first line: the rest is usually the statement or a connection dump."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
