"""What every pipeline step sets up: the store connected (schema migrated), the pipeline context
built from the resources, and the tracker of the step's task rows.

Shared by the ``market_data`` multi-asset and the ops of the sharded job, so that both run the
stages the same way and write the same tracking rows.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from candleflow.assets.partitions import root_run_id
from candleflow.pipeline.stages import PipelineContext
from candleflow.pipeline.tracked import RunTracker
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource
from candleflow.tracking.service import TrackingService

#: Step attempts per run (RetryPolicy) and the tracking rows' max_attempts.
MAX_ATTEMPTS = 3
#: Retries of a pipeline step within one run: exponential back-off from 2 s, with full jitter.
STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=MAX_ATTEMPTS - 1, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                                   jitter=dg.Jitter.FULL)


@contextmanager
def pipeline_step(context: dg.OpExecutionContext | dg.AssetExecutionContext, store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings,
                  tracking_step_key: str) -> Iterator[tuple[PipelineContext, RunTracker]]:
    """The pipeline context and the tracker of ``tracking_step_key``'s rows in this run chain."""
    calendar = settings.sessions()
    with store.connected() as candle_store:
        pipeline = PipelineContext(store=candle_store, source=candle_source.build(calendar),
                                   calendar=calendar, indicators=settings.indicator_specs(),
                                   scans=settings.scans())
        tracker = RunTracker(TrackingService(candle_store.engine), run_id=context.run_id,
                             root_run_id=root_run_id(context.run), step_key=tracking_step_key,
                             max_attempts=MAX_ATTEMPTS)
        yield pipeline, tracker
