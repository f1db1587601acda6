"""Symbols are dynamic partitions: added and removed with ``candleflow universe`` or the sensor."""

from collections.abc import Sequence

import dagster as dg

SYMBOLS_PARTITIONS_NAME = "symbols"

symbols_partitions = dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS_NAME)


def partition_range_tags(symbols: Sequence[str]) -> dict[str, str]:
    """Run tags that make one run cover ``symbols`` (in partition order) as a single range."""
    return {
        "dagster/asset_partition_range_start": symbols[0],
        "dagster/asset_partition_range_end": symbols[-1],
    }


#: Tag that makes a run continue the tracking rows of an earlier run chain (the reconciler sets it).
ROOT_RUN_TAG = "candleflow/root_run_id"


def root_run_id(run: dg.DagsterRun) -> str:
    """The run chain a run's tracking rows belong to: the reconciler's tag, else Dagster's
    re-execution root (run retries), else the run itself."""
    return run.tags.get(ROOT_RUN_TAG) or run.root_run_id or run.run_id
