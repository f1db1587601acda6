"""Dagster instance: storage extensions named from dagster.yaml (see deploy/dagster-sqlite.yaml),
and the pruning of old runs."""
