"""A universe run in shards of symbols: ``market_data_universe`` on worker processes of this
machine, ``market_data_sharded`` on Celery workers. One graph, two executors.

``plan_shards`` cuts the run's symbols into shards (by default one per worker process);
``process_shard``, mapped over them, runs the per-symbol stages (raw candles, derived bars,
indicators) of one shard, so each shard is one step, one process (or Celery task); ``scan_universe``
then evaluates the scans once over every symbol the shards left, because ranks are taken across the
run's symbols. Each step reports one materialization per asset and succeeded symbol (partition =
symbol) for its own symbols, as the ``market_data`` job does, so the assets' partitions stay true
and the event writing is spread over the shards; the scan step reports the asset checks of the
whole run, from every shard's outcomes. A window longer than a chunk runs chunk by chunk in every
step (``candleflow.pipeline.chunks``).

Tracking rows are keyed by the ``market_data_pipeline`` step in the run chain, the same rows a
``market_data`` run writes: the reconciler's re-runs and ``candleflow retry-failed`` (both
``market_data`` runs per symbol) continue them. Why a killed worker never loses a shard: see
docs/deployment.md, "When a worker dies".
"""

import math
from collections.abc import Iterator, Sequence

import dagster as dg
from pydantic import Field

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.dagster_steps.reporting import check_evaluation, report_stage
from candleflow.dagster_steps.step import (
    STEP_RETRY_POLICY,
    STORE_POOL,
    fail_if_every_symbol_failed,
    pipeline_step,
    stage_failures,
    take_over_lost_attempt,
)
from candleflow.defs.market_data.assets import RunWindow, market_data_pipeline
from candleflow.dagster_steps.celery_executor import candleflow_celery_executor
from candleflow.dagster_steps.worker_processes import candleflow_multiprocess_executor, worker_count
from candleflow.market.checks import CheckOutcome
from candleflow.market.symbols import require_known
from candleflow.pipeline.context import resolve_window
from candleflow.pipeline.registry import PER_SYMBOL_STAGES, PIPELINE, SCAN_SIGNALS
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.scan_config import ranks_across_symbols
from candleflow.pipeline.shards import Shard, ShardOutcome, checks_by_stage, merge_outcomes, split_into_shards
from candleflow.pipeline.tracked import RunTracker, run_tracked
from candleflow.pipeline.window import window_of_bars
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource
from candleflow.settings import read_settings

#: The stages run once over every symbol the shards left (the scans: ranks are cross-sectional).
CROSS_SECTIONAL_STAGES = [stage.name for stage in PIPELINE if stage.cross_sectional]
#: The step whose tracking rows both jobs write (see the module docstring).
TRACKING_STEP = market_data_pipeline.op.name


class ShardedRunConfig(RunWindow):
    symbols: list[str] = Field(default_factory=list, description="Symbols of the run; empty = every "
                               "symbol of the universe (the `symbols` partitions).")
    shard_size: int = Field(default=0, description="Symbols per shard: one step, one process or Celery "
                            "task; 0: the symbols split evenly over CANDLEFLOW_WORKERS (default: the cores).")


@dg.op(out=dg.DynamicOut(Shard), description="Cuts the run's symbols into shards of `shard_size`.")
def plan_shards(context: dg.OpExecutionContext, config: ShardedRunConfig,
                settings: PipelineSettings) -> Iterator[dg.DynamicOutput]:
    universe = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
    symbols = require_known(config.symbols, universe) if config.symbols else list(universe)
    workers = worker_count(read_settings())
    size = max(config.shard_size or math.ceil(len(symbols) / workers), 1)
    # the shards that run at once share the run's chunk of bars (CANDLEFLOW_CHUNK_BARS)
    at_once = min(math.ceil(len(symbols) / size), workers)
    shards = split_into_shards(symbols, size, config.start, config.end, max(settings.chunk_bars // at_once, 1))
    context.log.info(f"{len(symbols)} symbols in {len(shards)} shards of at most {size}, {at_once} at once")
    for shard in shards:
        yield dg.DynamicOutput(shard, mapping_key=shard.key)


@dg.op(retry_policy=STEP_RETRY_POLICY, pool=STORE_POOL,
       description="Raw candles, derived bars, indicators and the scans that do not rank, of one shard.")
def process_shard(context: dg.OpExecutionContext, shard: Shard, store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings) -> ShardOutcome:
    with pipeline_step(context, store, candle_source, settings, TRACKING_STEP) as (pipeline, tracker):
        # The scans that do not compare symbols run here, on the bars still in memory; their
        # result goes to scan_universe, which tracks and reports the scans stage as a whole.
        pipeline.scans = [scan for scan in pipeline.scans if not ranks_across_symbols(scan)]
        pipeline.chunk_bars = shard.chunk_bars or pipeline.chunk_bars
        stages = [*PER_SYMBOL_STAGES, *([SCAN_SIGNALS.name] if pipeline.scans else [])]
        take_over_lost_attempt(context, tracker, PER_SYMBOL_STAGES, shard.symbols)
        results = run_tracked(pipeline, tracker, stages, shard.symbols,
                              resolve_window(pipeline, shard.start, shard.end), context.log.info,
                              untracked=[SCAN_SIGNALS.name])
    per_symbol = [result for result in results if result.stage != SCAN_SIGNALS.name]
    scans = next((result for result in results if result.stage == SCAN_SIGNALS.name), None)
    _report(context, per_symbol, tracker)
    ingest = per_symbol[0]
    # Each stage saw only the survivors of the one before: the last stage's are the shard's.
    survivors = (scans or per_symbol[-1]).succeeded
    return ShardOutcome(shard, tuple(survivors), ingest.first_bar, ingest.last_bar, stage_failures(results),
                        checks_by_stage(per_symbol), scans)


@dg.op(retry_policy=STEP_RETRY_POLICY, pool=STORE_POOL,
       description="The scans that rank, over every symbol the shards left; the scans stage reported.")
def scan_universe(context: dg.OpExecutionContext, outcomes: list[ShardOutcome], store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings) -> None:
    merged = merge_outcomes(outcomes)
    _log_checks(context, merged.checks)  # the per-symbol stages' checks over every shard
    with pipeline_step(context, store, candle_source, settings, TRACKING_STEP) as (pipeline, tracker):
        # A symbol that failed in its shard gets a FAILED scans row, as in a market_data run:
        # with the reason if it failed the scans there, else as not run.
        tracker.begin(CROSS_SECTIONAL_STAGES, [s for s in merged.symbols if s not in merged.succeeded])
        tracker.close(merged.scans.failed if merged.scans else None)
        fail_if_every_symbol_failed(merged.succeeded, merged.failed)
        window = resolve_window(pipeline, merged.start, merged.end)
        if window is None and merged.first_bar is not None:
            window = window_of_bars(pipeline.calendar, merged.first_bar, merged.last_bar)
        pipeline.scans = [scan for scan in pipeline.scans if ranks_across_symbols(scan)]
        take_over_lost_attempt(context, tracker, CROSS_SECTIONAL_STAGES, merged.succeeded)
        results = run_tracked(pipeline, tracker, CROSS_SECTIONAL_STAGES, merged.succeeded, window,
                              context.log.info, prior={SCAN_SIGNALS.name: merged.scans} if merged.scans else None)
    _report(context, results, tracker)
    _log_checks(context, checks_by_stage(results))
    fail_if_every_symbol_failed(results[-1].succeeded, {**merged.failed, **stage_failures(results)})


def _log_checks(context: dg.OpExecutionContext, checks: Sequence[tuple[str, CheckOutcome]]) -> None:
    for stage, outcome in checks:
        context.log_event(check_evaluation(stage, outcome))


def _report(context: dg.OpExecutionContext, results: list[StageResult], tracker: RunTracker) -> None:
    for result in results:
        report_stage(context, result, tracker.seconds)


@dg.graph(description="The pipeline of a universe run in shards of symbols, one step per shard, then "
          "the scans over the universe.")
def market_data_sharded():
    scan_universe(plan_shards().map(process_shard).collect())


#: Run monitoring fails a run still going after 2 hours (a lost Celery worker leaves none to run
#: its steps); a backfill of a long window is a run of ``market_data_universe``, which has no limit.
market_data_sharded_job = market_data_sharded.to_job(
    name="market_data_sharded",
    executor_def=candleflow_celery_executor,
    tags={"candleflow/workload": "universe", "dagster/max_runtime": "7200"},
)

market_data_universe_job = market_data_sharded.to_job(
    name="market_data_universe",
    executor_def=candleflow_multiprocess_executor,
    description="The four stages for the universe (or `symbols`) over a window, in shards that run at "
    "once on CANDLEFLOW_WORKERS processes, then the scans over the universe. Windows longer than a "
    "chunk run chunk by chunk in bounded memory (CANDLEFLOW_CHUNK_BARS): a backfill.",
    tags={"candleflow/workload": "universe"},
)


def market_data_retry_config(run: dg.DagsterRun) -> dict:
    """Run config of a per-symbol ``market_data`` re-run over the same window as ``run`` (a run of
    either job): ``candleflow retry-failed`` re-runs a sharded run's failed symbols this way."""
    if run.job_name not in (market_data_sharded_job.name, market_data_universe_job.name):
        return dict(run.run_config)
    plan = run.run_config.get("ops", {}).get(plan_shards.name, {}).get("config", {})
    window = {key: plan[key] for key in RunWindow.model_fields if key in plan}
    return {"ops": {TRACKING_STEP: {"config": window}}}
