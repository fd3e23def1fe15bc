"""Components configured from `defs.yaml` files under `dw_pipelines/defs/`."""

from dw_pipelines.components.stream_catalog import StreamCatalog

__all__ = ["StreamCatalog"]
