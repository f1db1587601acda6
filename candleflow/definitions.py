"""The code location: per-domain definitions merged, resources chosen from the environment.

Kept cheap to import: the multiprocess executor imports this module again in every step process.
"""

import os

import dagster as dg

from candleflow.assets.market_data import market_data_pipeline
from candleflow.environment import store_url
from candleflow import jobs, sensors
from candleflow.resources import (
    CandleSourceResource,
    LandingFolderCandles,
    PipelineSettings,
    StoreResource,
    SyntheticCandles,
)

# See README, "Design". Both are read by Dagster at the moment it writes events:
# one ASSET_MATERIALIZATION_PLANNED event per asset per run instead of one per asset per partition
# (read in the process that creates the run: the CLI here; set it for webserver and daemon too),
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
# and per-partition materializations stored in batches (read in the step process).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")


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


defs = dg.Definitions.merge(
    dg.Definitions(assets=[market_data_pipeline]),
    jobs.defs,
    sensors.defs,
    dg.Definitions(resources={
        "store": store(),
        "candle_source": candle_source(),
        "settings": PipelineSettings(
            indicators_file=os.environ.get("CANDLEFLOW_INDICATORS_FILE", ""),
            scans_file=os.environ.get("CANDLEFLOW_SCANS_FILE", ""),
        ),
    }),
)
