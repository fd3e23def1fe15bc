"""A JSON REST API read by the sync engine (requests + tenacity, see `sync/sources/rest`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from dw_pipelines.resources.env import read_env

if TYPE_CHECKING:
    from dw_pipelines.sync.sources.rest.client import Secrets
    from dw_pipelines.sync.sources.rest.config import RestApi
    from dw_pipelines.sync.sources.rest.source import RestSource


class RestResource(dg.ConfigurableResource):
    """One API. `api` is its validated `rest:` block as JSON (environment-variable names only,
    never a secret); the variables are read when a sync opens the API, so an unset one fails
    that source's streams only."""

    name: str = "rest"
    api: str
    """The source's `rest:` settings, as JSON."""

    def model(self) -> RestApi:
        from dw_pipelines.sync.sources.rest.config import RestApi

        return RestApi.model_validate_json(self.api)

    def secrets(self, api: RestApi) -> Secrets:
        from dw_pipelines.sync.sources.rest.client import Secrets

        auth = api.auth

        def env(field: str) -> str | None:
            # Each auth type has only its own fields; the others read as "not named".
            return read_env(self.name, getattr(auth, field, None), f"rest.auth.{field}")

        base_url = read_env(self.name, api.base_url_env, "rest.base_url_env")
        if not base_url and not api.base_url:
            from dw_pipelines.resources.env import SourceNotConfigured

            raise SourceNotConfigured(f"source '{self.name}' names no base_url")
        return Secrets(
            token=env("token_env"),
            key=env("key_env"),
            username=env("username_env"),
            password=env("password_env"),
            client_id=env("client_id_env"),
            client_secret=env("client_secret_env"),
            refresh_token=env("refresh_token_env"),
            base_url=base_url,
            ca_bundle=read_env(self.name, api.ca_bundle_env, "rest.ca_bundle_env"),
        )

    @contextmanager
    def open(self) -> Iterator[RestSource]:
        from dw_pipelines.sync.sources.rest.source import RestSource

        api = self.model()
        source = RestSource(self.name, api, self.secrets(api))
        try:
            yield source
        finally:
            source.close()
