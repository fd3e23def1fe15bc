"""Salesforce as a source: `types` (field types and values), `client` (login, quota, retries,
errors), `bulk` (Bulk API 2.0 query jobs), `reader` (records -> Arrow, `SalesforceSource`)."""

from dw_pipelines.sync.sources.salesforce.bulk import BulkPage, BulkQuery
from dw_pipelines.sync.sources.salesforce.client import (
    DEFAULT_API_VERSION,
    ApiUsage,
    BulkJobFailed,
    QuotaExhausted,
    SalesforceAuth,
    SalesforceClient,
    SalesforceQueryError,
    SalesforceSettings,
    SalesforceSyncError,
)
from dw_pipelines.sync.sources.salesforce.reader import SalesforceSource, read_ahead
from dw_pipelines.sync.sources.salesforce.types import (
    CURSOR_FALLBACKS,
    SKIPPED_TYPES,
    csv_texts,
    json_texts,
    logical_column,
    soql_literal,
    to_arrow,
)

__all__ = [
    "CURSOR_FALLBACKS",
    "DEFAULT_API_VERSION",
    "SKIPPED_TYPES",
    "ApiUsage",
    "BulkJobFailed",
    "BulkPage",
    "BulkQuery",
    "QuotaExhausted",
    "SalesforceAuth",
    "SalesforceClient",
    "SalesforceQueryError",
    "SalesforceSettings",
    "SalesforceSource",
    "SalesforceSyncError",
    "csv_texts",
    "json_texts",
    "logical_column",
    "read_ahead",
    "soql_literal",
    "to_arrow",
]
