"""Per-partition materialization events, written as one batch per asset.

A range run reports one materialization per asset per symbol that succeeded (2,500 symbols x 4
assets = 10,000 events). ``context.log_event`` would write them one at a time; this sends them
through the batch path Dagster itself uses for a range-aware output (``DagsterEventBatchMetadata``),
so that with ``DAGSTER_EVENT_BATCH_SIZE`` set, Postgres and the batching SQLite storage store
them in batches. Uses Dagster 1.13.27's step context and event constructor, re-check on upgrade.
"""

from collections.abc import Mapping

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id


def report_materializations(context: dg.AssetExecutionContext | dg.OpExecutionContext, asset_key: str,
                            metadata_by_partition: Mapping[str, Mapping[str, object]]) -> None:
    step_context = context.op_execution_context._step_execution_context  # noqa: SLF001
    batch_id = generate_event_batch_id()
    last = len(metadata_by_partition) - 1
    for index, (partition, metadata) in enumerate(metadata_by_partition.items()):
        DagsterEvent.asset_materialization(
            step_context,
            dg.AssetMaterialization(asset_key=asset_key, partition=partition, metadata=dict(metadata)),
            DagsterEventBatchMetadata(batch_id, index == last),
        )
