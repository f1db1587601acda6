"""The code location: per-domain definitions merged, resources chosen from the environment.

Kept cheap to import: the multiprocess executor imports this module again in every step process.
"""

import os

import dagster as dg

from candleflow.assets.market_data import market_data_pipeline
from candleflow import jobs, sensors
from candleflow.resources.deployment import deployment_resources

# See README, "Design". Both are read by Dagster at the moment it writes events:
# one ASSET_MATERIALIZATION_PLANNED event per asset per run instead of one per asset per partition
# (read in the process that creates the run: the CLI here; set it for webserver and daemon too),
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
# and per-partition materializations stored in batches (read in the step process).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")


defs = dg.Definitions.merge(
    dg.Definitions(assets=[market_data_pipeline]),
    jobs.defs,
    sensors.defs,
    dg.Definitions(resources=deployment_resources()),
)
