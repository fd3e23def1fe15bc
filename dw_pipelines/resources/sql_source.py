"""Operational SQL databases (PostgreSQL, MySQL/MariaDB, SQLite) read by the sync engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.resources.env import SourceNotConfigured, read_env

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.sql import SqlSource


class SqlSourceResource(dg.ConfigurableResource):
    """A database by SQLAlchemy URL: `url_env` names the variable holding it (read when a sync
    opens the source, so the password stays out of config); `url` gives it directly in code."""

    url: str | None = None
    url_env: str | None = None
    """The environment variable holding the URL; also named in errors about the URL."""
    name: str = "source"
    batch_rows: int = 50_000

    def source_url(self) -> str:
        url = self.url or read_env(self.name, self.url_env, "url_env")
        if not url:
            raise SourceNotConfigured(
                f"source '{self.name}' has no url_env (the variable with its URL)"
            )
        return url

    @contextmanager
    def open(self) -> Iterator[SqlSource]:
        from dw_pipelines.sync.sources.sql import SqlSource

        source = SqlSource(
            self.source_url(), name=self.name, batch_rows=self.batch_rows, url_env=self.url_env
        )
        try:
            yield source
        finally:
            source.close()
