"""Dagster side of ingestion: stream assets, their metadata, and the sync jobs and schedules."""
