"""In-warehouse transforms: the dbt project under `defs/transforms/`, loaded as Dagster assets."""

from dw_pipelines.transforms.component import WarehouseDbtProject

__all__ = ["WarehouseDbtProject"]
