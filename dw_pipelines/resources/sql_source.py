"""Operational SQL databases (PostgreSQL, MySQL/MariaDB, SQLite) read by the sync engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.sql import SqlSource


class SqlSourceResource(dg.ConfigurableResource):
    """A database by SQLAlchemy URL; give it as `dg.EnvVar` so the password stays secret."""

    url: str
    name: str = "source"
    batch_rows: int = 50_000
    url_env: str | None = None
    """The environment variable `url` comes from, named in errors about the URL."""

    @contextmanager
    def open(self) -> Iterator[SqlSource]:
        from dw_pipelines.sync.sources.sql import SqlSource

        source = SqlSource(
            self.url, name=self.name, batch_rows=self.batch_rows, url_env=self.url_env
        )
        try:
            yield source
        finally:
            source.close()
