"""Dagster instance storage extensions, named from dagster.yaml (see deploy/dagster-sqlite.yaml)."""
