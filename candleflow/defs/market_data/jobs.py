"""``market_data``: the four assets for a symbol, or for a range of symbols in one run."""

import dagster as dg

from candleflow.dagster_steps.partitions import symbols_partitions
from candleflow.defs.market_data.assets import market_data_pipeline

market_data_job = dg.define_asset_job(
    "market_data",
    selection=dg.AssetSelection.assets(market_data_pipeline),
    partitions_def=symbols_partitions,
    executor_def=dg.multiprocess_executor,
    description="Raw candles -> derived bars -> indicators -> scan signals for a symbol, or for a "
    "range of symbols in one run (tags dagster/asset_partition_range_start/_end).",
)
