"""Salesforce as a source (a package: the module moves first, then splits along its seams)."""

from dw_pipelines.sync.sources.salesforce.reader import *  # noqa: F403
from dw_pipelines.sync.sources.salesforce.reader import (  # noqa: F401
    CURSOR_FALLBACKS,
    DEFAULT_API_VERSION,
    BulkJobFailed,
    QuotaExhausted,
    SalesforceAuth,
    SalesforceQueryError,
    SalesforceSettings,
    SalesforceSource,
    logical_column,
    soql_literal,
    to_arrow,
)
