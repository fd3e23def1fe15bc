"""`python -m dw_pipelines.transforms prepare`: parse the dbt project into its manifest.

Run at install time (the Makefile does), so loading the code location reads the manifest
instead of parsing the project; it is prepared for the warehouse DW_WAREHOUSE_URL names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dagster_dbt import DbtProject

from dw_pipelines.transforms.component import put_dbt_on_path, warehouse_env

PROJECT_DIR = Path(__file__).resolve().parents[1] / "defs" / "transforms" / "dbt"


def prepare() -> Path:
    put_dbt_on_path()
    project = DbtProject(project_dir=PROJECT_DIR)
    with warehouse_env():
        project.preparer.prepare(project)
    return project.manifest_path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dw_pipelines.transforms")
    parser.add_argument("command", choices=["prepare"])
    parser.parse_args()
    print(f"dbt manifest: {prepare()}")


if __name__ == "__main__":
    main()
