"""JSON REST APIs as a source: `config` (the YAML model), `client` (auth, retries, budget,
errors), `records` (JSON -> Arrow), `source` (`RestSource`, endpoints paged into batches)."""

from dw_pipelines.sync.sources.rest.client import (
    RequestBudgetExhausted,
    RestApiError,
    RestClient,
    Secrets,
    Usage,
)
from dw_pipelines.sync.sources.rest.config import Endpoint, RestApi
from dw_pipelines.sync.sources.rest.source import RestSource, bound_text

__all__ = [
    "Endpoint",
    "RequestBudgetExhausted",
    "RestApi",
    "RestApiError",
    "RestClient",
    "RestSource",
    "Secrets",
    "Usage",
    "bound_text",
]
