"""What every pipeline step sets up: the store connected (schema migrated), the pipeline context
built from the resources, and the tracker of the step's task rows; what it does before its stages
(take over the rows a killed attempt left) and after them (fail when every symbol failed).

Shared by the ``market_data`` multi-asset and the ops of the sharded job, so that both run the
stages the same way and write the same tracking rows.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import dagster as dg

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, root_run_id
from candleflow.pipeline.context import PipelineContext
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.tracked import RunTracker, timed
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource
from candleflow.tracking.service import TrackingService

#: Step attempts per run (RetryPolicy) and the tracking rows' max_attempts.
MAX_ATTEMPTS = 3
#: Retries of a pipeline step within one run: exponential back-off from 2 s, with full jitter.
STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=MAX_ATTEMPTS - 1, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                                   jitter=dg.Jitter.FULL)
#: The concurrency pool of every step that writes to the candle store. A pool without a limit (the
#: default) changes nothing; a deployment caps the steps writing at once with
#: ``dagster instance concurrency set candleflow_store N``, or ``concurrency: pools:`` in
#: dagster.yaml: 1 for a SQLite store (one writer at a time: concurrent writers wait on its lock and
#: time out), and for Postgres what its connection limit and write throughput bear. Runs launched
#: beyond the cap queue their steps instead of failing them.
STORE_POOL = "candleflow_store"


@contextmanager
def pipeline_step(context: dg.OpExecutionContext | dg.AssetExecutionContext, store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings,
                  tracking_step_key: str) -> Iterator[tuple[PipelineContext, RunTracker]]:
    """The pipeline context and the tracker of ``tracking_step_key``'s rows in this run chain."""
    calendar = settings.sessions()
    with store.connected() as candle_store:
        pipeline = PipelineContext(store=candle_store, source=candle_source.build(calendar),
                                   calendar=calendar, indicators=settings.indicator_specs(),
                                   scans=settings.scans(), scan_time_limit_s=settings.scan_time_limit_s,
                                   chunk_bars=settings.chunk_bars,
                                   universe=context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
        tracker = RunTracker(TrackingService(candle_store.engine), run_id=context.run_id,
                             root_run_id=root_run_id(context.run), step_key=tracking_step_key,
                             max_attempts=MAX_ATTEMPTS)
        yield pipeline, tracker


def take_over_lost_attempt(context: dg.OpExecutionContext | dg.AssetExecutionContext, tracker: RunTracker,
                           stages: Sequence[str], symbols: Sequence[str]) -> None:
    """Fail the rows an earlier attempt of this run chain left PROCESSING (its process was killed),
    so that this attempt restarts them and their attempts count it (``RunTracker.take_over``)."""
    reason = f"attempt lost with its worker; step re-run in run {context.run_id}"
    lost = timed(tracker, tracker.take_over, stages, symbols, reason)
    if lost:
        context.log.warning(f"{lost} tracking rows were left PROCESSING by an attempt whose worker "
                            "was lost: failed and re-run now")


def stage_failures(results: Sequence[StageResult]) -> dict[str, str]:
    """Why each symbol failed, in any of the stages (a symbol fails in one stage at most)."""
    return {symbol: reason for result in results for symbol, reason in result.failed.items()}


def fail_if_every_symbol_failed(survivors: Sequence[str], failed: Mapping[str, str]) -> None:
    """A run fails when no symbol got through every stage it ran (``survivors``), with the reasons.

    Not retried: the same data fails the same way again. The stages' materializations are
    reported before this, so the symbols' earlier stages still show."""
    if not survivors:
        reasons = "; ".join(failed.values())
        raise dg.Failure(description=f"every symbol failed: {reasons}"[:2000], allow_retries=False)
