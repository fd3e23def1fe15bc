"""Keep secrets out of anything we print, log, store as metadata or raise."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@"
)


def safe_url(url: str) -> str:
    """The URL with its password replaced by ***, for display."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def url_secrets(url: str) -> list[str]:
    """Secrets embedded in a URL: the password, raw and percent-decoded, and password= params."""
    secrets: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets += [parts.password, unquote(parts.password)]
        for pair in parts.query.split("&"):
            key, _, value = pair.partition("=")
            if key.lower() in {"password", "passwd", "token", "secret"} and value:
                secrets += [value, unquote(value)]
    except ValueError:
        pass
    return [s for s in secrets if s]


def redact(text: str, *urls: str) -> str:
    """Text with every URL password masked and every secret of the given URLs removed."""
    text = safe_url(text)
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, "***")
    return text
