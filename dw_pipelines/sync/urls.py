"""Connection URLs: parsed once, the way the drivers will read them, and shown without secrets.

Passwords are often generated and hold `/ @ : % ? #` or spaces unencoded. SQLAlchemy's own parser
takes a `/` in a password but cuts it at the first `@`, so the rest would be read (and printed) as
the host. Credentials end at the *last* `@` instead: a host cannot contain one, so an `@` in the
database name or query must be written `%40`. Everything downstream (drivers, libpq, messages)
then works from the parsed `sa.URL`, never from the raw text.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT_S = 10

# Query parameters that carry credentials rather than settings (libpq, PyMySQL, cloud drivers).
SECRET_PARAMS = frozenset(
    {"password", "passwd", "sslpassword", "sslkey", "token", "secret", "api_key", "access_token"}
)


class MalformedUrl(ValueError):
    """A URL that cannot be parsed; the message names the part, never shows the URL."""


def parse_url(url: str) -> sa.URL:
    """The URL as SQLAlchemy's `sa.URL`, credentials taken up to the last `@`."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise MalformedUrl("it has no scheme such as postgresql://")
    userinfo, at, location = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    # A `/` before the first `:` means the `@` sits in the path or query, not after credentials.
    if at and "/" not in user:
        url = f"{scheme}://{location}"
    try:
        parsed = make_url(url)
    except ValueError:
        # SQLAlchemy's own message quotes the port text, which may be a piece of the password.
        raise MalformedUrl("its port is not a number") from None
    except sa.exc.ArgumentError:
        raise MalformedUrl("it is not of the form driver://user:password@host:port/db") from None
    if at and "/" not in user:
        parsed = parsed.set(
            username=unquote(user) or None, password=unquote(password) if colon else None
        )
    return parsed


def sqlalchemy_url(url: str) -> sa.URL:
    """Our driver choice for each backend when the URL names none."""
    parsed = parse_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("mysql", "mariadb"):
        return parsed.set(drivername="mysql+pymysql")
    return parsed


def libpq_url(url: str) -> str:
    """The same PostgreSQL URL without SQLAlchemy's `+driver`, as libpq (and ADBC) want it.

    Credentials are encoded byte for byte: libpq refuses a space and splits at the first `/`
    or `@`, and its error message then quotes what it could not read.
    """
    parsed = parse_url(url)
    query = dict(parsed.query)
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    # URL.set() ignores None, so the credentials are left out by building the URL anew.
    rest = sa.URL.create(
        "postgresql", host=parsed.host, port=parsed.port, database=parsed.database, query=query
    ).render_as_string()
    scheme, _, location = rest.partition("://")
    userinfo = quote(parsed.username or "", safe="")
    if parsed.password is not None:
        userinfo += ":" + quote(parsed.password, safe="")
    return f"{scheme}://{userinfo}@{location}" if userinfo else rest


def display_url(url: str | sa.URL) -> str:
    """The URL for messages and logs: no password, no credential-carrying query parameter."""
    try:
        parsed = url if isinstance(url, sa.URL) else parse_url(url)
    except MalformedUrl:
        # A plain path (a DuckDB file) holds no credentials; anything else is not shown at all.
        return url if isinstance(url, str) and "://" not in url and "@" not in url else "<URL>"
    query = {k: ("***" if k.lower() in SECRET_PARAMS else v) for k, v in parsed.query.items()}
    # SQLAlchemy would percent-encode the mask itself.
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")


def url_secrets(url: str) -> list[str]:
    """Every form in which the URL's credentials may reappear in a driver's message.

    The password decoded, as written and percent-encoded, credential query parameters, and the
    pieces between the characters a misreading parser would split on: whatever a driver echoes.
    """
    try:
        parsed = parse_url(url)
    except MalformedUrl:
        parsed = None
    secrets: set[str] = set()
    values = [parsed.password] if parsed is not None and parsed.password else []
    if parsed is not None:
        for key, value in parsed.query.items():
            if key.lower() in SECRET_PARAMS:
                values += [value] if isinstance(value, str) else list(value)
    # The text between `:` and the last `@` as typed, whether or not it parsed.
    userinfo = url.partition("://")[2].rpartition("@")[0]
    if ":" in userinfo:
        values.append(userinfo.partition(":")[2])
    for value in values:
        if not value:
            continue
        secrets |= {value, unquote(value), quote(value, safe=""), quote(value)}
        secrets |= {quote(unquote(value), safe="")}
        for sep in "/@:?#% &=":
            value = value.replace(sep, "\0")
        secrets |= {piece for piece in value.split("\0") if len(piece) >= 3}
    return sorted((s for s in secrets if s), key=len, reverse=True)


@dataclass(frozen=True)
class BigQueryUrl:
    """`bigquery://project/dataset_prefix?location=EU[&endpoint=http://host:port][&timeout=30]`:
    tables of schema `s` live in dataset `<dataset_prefix>_s`; `endpoint` points the client at an
    emulator; `timeout` (seconds) bounds each request with its retries and each wait for a job
    (unset: the client's own defaults, which retry a 5xx answer for up to 10 minutes)."""

    project: str
    dataset_prefix: str = ""
    location: str | None = None
    endpoint: str | None = None
    timeout_s: float | None = None


def parse_bigquery_url(url: str) -> BigQueryUrl:
    parts = urlsplit(url)
    if parts.scheme != "bigquery" or not parts.netloc:
        raise MalformedUrl("it is not of the form bigquery://project/dataset_prefix")
    query = parse_qs(parts.query)
    unknown = set(query) - {"location", "endpoint", "timeout"}
    if unknown:
        raise MalformedUrl(f"unknown parameter(s) {', '.join(sorted(unknown))}")
    prefix = parts.path.strip("/")
    if "/" in prefix:
        raise MalformedUrl("the path is one dataset prefix, not several segments")
    timeout_s = None
    if "timeout" in query:
        try:
            timeout_s = float(query["timeout"][0])
        except ValueError:
            timeout_s = -1.0
        if not timeout_s > 0:
            raise MalformedUrl("timeout must be a positive number of seconds")
    return BigQueryUrl(
        project=parts.netloc,
        dataset_prefix=prefix,
        location=query.get("location", [None])[0],
        endpoint=query.get("endpoint", [None])[0],
        timeout_s=timeout_s,
    )
