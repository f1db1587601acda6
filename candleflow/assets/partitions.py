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
