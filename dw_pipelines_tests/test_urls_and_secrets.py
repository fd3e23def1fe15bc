"""URLs are read as the drivers read them, and no password shows, whatever characters it holds."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict

from dw_pipelines import settings
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.sync.cdc.pg_replication import PgReplication
from dw_pipelines.sync.errors import BadUrl, SourceUnreachable, WarehouseUnreachable
from dw_pipelines.sync.redact import redact
from dw_pipelines.sync.sources.sql import SqlSource
from dw_pipelines.sync.urls import MalformedUrl, display_url, libpq_url, parse_url
from dw_pipelines.sync.warehouses import open_warehouse
from dw_pipelines_tests.conftest import (
    MYSQL_ADMIN_URL,
    MYSQL_HOST,
    MYSQL_PORT,
    _admin_execute,
    query,
    require_service,
)

# Every piece between the special characters is distinctive, so a leaked fragment is caught.
PASSWORDS = [
    "Zq7x/Kx9w@Wm3v:Pv5u%Ty8t?Rb2s#Hn6r Lc4q",
    "Ab/Slash-pw",
    "Mk4p@@Jd8n",
    "Qs2w%2FNot-Encoded",
]


def fragments(password: str) -> list[str]:
    """The password and every run of four or more characters between its special characters."""
    pieces = password
    for sep in "/@:%?# ":
        pieces = pieces.replace(sep, "\0")
    return [password, *(p for p in pieces.split("\0") if len(p) >= 4)]


def leaked(password: str, text: str) -> list[str]:
    return [f for f in fragments(password) if f in text]


def everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.mark.parametrize("password", PASSWORDS)
def test_credentials_end_at_the_last_at_sign(password: str) -> None:
    parsed = parse_url(f"mysql://dw_user:{password}@db.example.com:3307/shop?charset=utf8mb4")
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "dw_user",
        "db.example.com",
        3307,
        "shop",
    )
    assert parsed.password == password.replace("%2F", "/")
    assert dict(parsed.query) == {"charset": "utf8mb4"}


def test_an_at_sign_in_the_query_of_a_url_without_credentials_stays_in_the_query() -> None:
    parsed = parse_url("postgresql://db.example.com/shop?application_name=etl@night")
    assert (parsed.username, parsed.host) == (None, "db.example.com")
    assert dict(parsed.query) == {"application_name": "etl@night"}


def test_an_at_sign_in_a_sqlite_path_stays_in_the_path() -> None:
    assert parse_url("sqlite:///data/team@work/shop.db").database == "data/team@work/shop.db"


@pytest.mark.parametrize("password", PASSWORDS)
def test_libpq_reads_the_same_credentials_as_sqlalchemy(password: str) -> None:
    url = f"postgresql+psycopg://dw_user:{password}@127.0.0.1:5433/shop?sslmode=disable"
    # psycopg's conninfo_to_dict is libpq's own parser (PQconninfoParse).
    read = conninfo_to_dict(libpq_url(url))
    assert read["password"] == parse_url(url).password
    assert (read["user"], read["host"], read["port"], read["dbname"]) == (
        "dw_user",
        "127.0.0.1",
        "5433",
        "shop",
    )
    assert read["sslmode"] == "disable"


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_displayed_url_holds_no_piece_of_the_password(password: str) -> None:
    shown = display_url(f"postgresql://dw_user:{password}@db.example.com/shop")
    assert shown == "postgresql://dw_user:***@db.example.com/shop"


def test_a_displayed_url_masks_credentials_given_as_query_parameters() -> None:
    shown = display_url("postgresql://db.example.com/shop?password=Hunter2x&sslmode=require")
    assert shown == "postgresql://db.example.com/shop?password=***&sslmode=require"


@pytest.mark.parametrize("password", PASSWORDS)
def test_redaction_removes_the_password_in_every_form_a_driver_may_echo(password: str) -> None:
    url = f"mysql://dw_user:{password}@db.example.com/shop"
    parsed = parse_url(url)
    echoed = (
        f"as typed {password}; decoded {parsed.password};"
        f" encoded {libpq_url(url.replace('mysql', 'postgresql'))};"
        f" misread host '{password.rpartition('@')[2]}'"
    )
    assert leaked(password, redact(echoed, url)) == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://dw_user:pw@db.example.com:Secret9x/shop", "port is not a number"),
        ("db.example.com/shop", "no scheme"),
    ],
)
def test_a_malformed_url_names_the_source_and_its_variable_but_not_the_url(
    url: str, problem: str
) -> None:
    with pytest.raises(BadUrl, match=problem) as caught:
        SqlSource(url, name="shop", url_env="DW_SHOP_URL")
    message = str(caught.value)
    assert "source 'shop'" in message and "DW_SHOP_URL" in message
    assert "Secret9x" not in everything_said(caught.value)
    assert "db.example.com" not in message


def test_an_unknown_database_names_the_source_and_its_variable() -> None:
    with pytest.raises(BadUrl, match="unknown database 'mongodb'") as caught:
        SqlSource("mongodb://dw_user:Pw4x@db.example.com/shop", name="shop", url_env="DW_SHOP_URL")
    assert "DW_SHOP_URL" in str(caught.value)


def test_a_driver_that_is_not_installed_is_named_with_the_source_and_its_variable() -> None:
    resource = SqlSourceResource(
        url="mysql+mysqldb://dw_user:Pw4x@127.0.0.1:1/shop", name="shop", url_env="DW_SHOP_URL"
    )
    with resource.open() as source, pytest.raises(BadUrl, match="not installed") as caught:
        source.describe("orders")
    assert "source 'shop'" in str(caught.value) and "DW_SHOP_URL" in str(caught.value)


def test_malformed_urls_are_a_value_error_naming_the_part() -> None:
    with pytest.raises(MalformedUrl, match="port"):
        parse_url("postgresql://u:p@h:Secret9x/db")


# -- against the real services ----------------------------------------------------------------


@pytest.fixture
def mysql_user() -> Iterator[tuple[str, str]]:
    """A MariaDB user whose real password holds every character a URL treats specially."""
    require_service("MariaDB", MYSQL_HOST, MYSQL_PORT)
    user, password = f"dwt_{uuid.uuid4().hex[:8]}", PASSWORDS[0]
    hosts = ("%", "localhost")
    _admin_execute(
        MYSQL_ADMIN_URL,
        *(f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{password}'" for h in hosts),
        *(f"GRANT SELECT ON mysql.* TO '{user}'@'{h}'" for h in hosts),
    )
    yield user, password
    _admin_execute(MYSQL_ADMIN_URL, *(f"DROP USER IF EXISTS '{user}'@'{h}'" for h in hosts))


def test_a_password_with_special_characters_works_unencoded(mysql_user: tuple[str, str]) -> None:
    user, password = mysql_user
    url = f"mysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/mysql"
    assert query(url, "SELECT current_user()")[0][0].startswith(user)


def test_a_refused_password_with_special_characters_never_shows(
    mysql_user: tuple[str, str],
) -> None:
    user, password = mysql_user
    wrong = password[::-1]
    source = SqlSource(f"mysql://{user}:{wrong}@{MYSQL_HOST}:{MYSQL_PORT}/mysql", name="shop")
    with pytest.raises(SourceUnreachable, match="Access denied") as caught:
        source.describe("user")
    assert leaked(wrong, everything_said(caught.value)) == []


@pytest.mark.parametrize("password", PASSWORDS)
def test_an_unreachable_postgres_source_never_shows_the_password(password: str) -> None:
    source = SqlSource(f"postgresql://dw_user:{password}@127.0.0.1:1/shop", name="shop")
    with pytest.raises(SourceUnreachable, match="cannot connect") as caught:
        source.describe("orders")
    assert leaked(password, everything_said(caught.value)) == []
    assert "dw_user:***@127.0.0.1:1/shop" in str(caught.value)


@pytest.mark.parametrize("password", PASSWORDS)
def test_an_unreachable_postgres_warehouse_never_shows_the_password(password: str) -> None:
    with pytest.raises(WarehouseUnreachable, match="cannot connect") as caught:
        open_warehouse(f"postgresql://dw_user:{password}@127.0.0.1:1/warehouse")
    assert leaked(password, everything_said(caught.value)) == []


@pytest.mark.parametrize("password", PASSWORDS)
def test_an_unreachable_replication_source_never_shows_the_password(password: str) -> None:
    replication = PgReplication(f"postgresql://dw_user:{password}@127.0.0.1:1/shop", "shop")
    with pytest.raises(SourceUnreachable, match="cannot connect") as caught:
        replication.check_ready()
    assert leaked(password, everything_said(caught.value)) == []


@pytest.mark.parametrize(
    ("url", "catalog"),
    [
        ("postgresql://dw_user:Ab/Slash-pw@db.example.com", "postgres"),
        ("postgresql://dw_user:Ab/Slash-pw@db.example.com/analytics?sslmode=require", "analytics"),
    ],
)
def test_the_warehouse_catalog_shown_in_table_names_is_the_database_never_the_password(
    url: str, catalog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.WAREHOUSE_URL_ENV, url)
    assert settings.warehouse_catalog() == catalog
