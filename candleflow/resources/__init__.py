"""Dagster resources: thin wrappers that build the plain-Python store, sources and settings."""

from candleflow.resources.settings import PipelineSettings
from candleflow.resources.sources import CandleSourceResource, LandingFolderCandles, SyntheticCandles
from candleflow.resources.store import StoreResource

__all__ = [
    "CandleSourceResource",
    "LandingFolderCandles",
    "PipelineSettings",
    "StoreResource",
    "SyntheticCandles",
]
