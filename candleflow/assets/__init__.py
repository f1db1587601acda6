"""Dagster assets: thin wrappers around ``candleflow.pipeline``."""
