"""The resources of this deployment, chosen from the environment (README, "Configuration")."""

import os

import dagster as dg

from candleflow.environment import store_url
from candleflow.resources.settings import PipelineSettings
from candleflow.resources.sources import CandleSourceResource, LandingFolderCandles, SyntheticCandles
from candleflow.resources.store import StoreResource


def candle_source() -> CandleSourceResource:
    """``CANDLEFLOW_SOURCE``: ``synthetic`` (default) or ``files`` (``CANDLEFLOW_LANDING_DIR``)."""
    base_interval = os.environ.get("CANDLEFLOW_BASE_INTERVAL", "1m")
    if os.environ.get("CANDLEFLOW_SOURCE", "synthetic") == "files":
        return LandingFolderCandles(landing_dir=dg.EnvVar("CANDLEFLOW_LANDING_DIR"),
                                    base_interval=base_interval)
    return SyntheticCandles(seed=int(os.environ.get("CANDLEFLOW_SEED", "7")), base_interval=base_interval)


def store() -> StoreResource:
    if "CANDLEFLOW_STORE_URL" in os.environ:
        return StoreResource(url=dg.EnvVar("CANDLEFLOW_STORE_URL"))
    return StoreResource(url=store_url())


def deployment_resources() -> dict[str, dg.ConfigurableResource]:
    """The ``store``, ``candle_source`` and ``settings`` resources every definition uses."""
    return {
        "store": store(),
        "candle_source": candle_source(),
        "settings": PipelineSettings(
            indicators_file=os.environ.get("CANDLEFLOW_INDICATORS_FILE", ""),
            scans_file=os.environ.get("CANDLEFLOW_SCANS_FILE", ""),
        ),
    }
