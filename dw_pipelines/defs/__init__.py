"""Definitions discovered by `dg.load_from_defs_folder`: one folder per source system."""
