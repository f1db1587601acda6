"""``market_data_sharded``: the pipeline of a universe run spread over Celery workers.

``plan_shards`` cuts the run's symbols into shards; ``process_shard``, mapped over them, runs the
per-symbol stages (raw candles, derived bars, indicators) of one shard, so each shard is one step,
one Celery task that any worker takes; ``scan_universe`` then evaluates the scans once over every
symbol the shards left, because ranks are taken across the run's symbols. Each step reports one
materialization per asset and succeeded symbol (partition = symbol), as the ``market_data`` job
does, so the assets' partitions stay true; asset checks run with the ``market_data`` job only.

Tracking rows are keyed by the ``market_data_pipeline`` step in the run chain, the same rows a
``market_data`` run writes: the reconciler's re-runs and ``candleflow retry-failed`` (both
``market_data`` runs per symbol) continue them. Why a killed worker never loses a shard: see
docs/deployment.md, "When a worker dies".
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.dagster_steps.reporting import report_stage
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
from candleflow.market.symbols import require_known
from candleflow.pipeline.context import resolve_window
from candleflow.pipeline.registry import PER_SYMBOL_STAGES, PIPELINE
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.shards import Shard, ShardOutcome, merge_outcomes, split_into_shards
from candleflow.pipeline.tracked import RunTracker, run_tracked
from candleflow.pipeline.window import window_of_bars
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource

#: The stages run once over every symbol the shards left (the scans: ranks are cross-sectional).
CROSS_SECTIONAL_STAGES = [stage.name for stage in PIPELINE if stage.cross_sectional]
#: The step whose tracking rows both jobs write (see the module docstring).
TRACKING_STEP = market_data_pipeline.op.name


class ShardedRunConfig(RunWindow):
    symbols: list[str] = Field(default_factory=list, description="Symbols of the run; empty = every "
                               "symbol of the universe (the `symbols` partitions).")
    shard_size: int = Field(default=250, description="Symbols per shard: one step, one Celery task.")


@dg.op(out=dg.DynamicOut(Shard), description="Cuts the run's symbols into shards of `shard_size`.")
def plan_shards(context: dg.OpExecutionContext, config: ShardedRunConfig) -> Iterator[dg.DynamicOutput]:
    universe = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
    symbols = require_known(config.symbols, universe) if config.symbols else list(universe)
    shards = split_into_shards(symbols, config.shard_size, config.start, config.end)
    context.log.info(f"{len(symbols)} symbols in {len(shards)} shards of at most {config.shard_size}")
    for shard in shards:
        yield dg.DynamicOutput(shard, mapping_key=shard.key)


@dg.op(retry_policy=STEP_RETRY_POLICY, pool=STORE_POOL,
       description="Raw candles, derived bars and indicators of one shard.")
def process_shard(context: dg.OpExecutionContext, shard: Shard, store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings) -> ShardOutcome:
    with pipeline_step(context, store, candle_source, settings, TRACKING_STEP) as (pipeline, tracker):
        take_over_lost_attempt(context, tracker, PER_SYMBOL_STAGES, shard.symbols)
        results = run_tracked(pipeline, tracker, PER_SYMBOL_STAGES, shard.symbols,
                              resolve_window(pipeline, shard.start, shard.end))
    _report(context, results, tracker)
    ingest = results[0]
    # Each stage saw only the survivors of the one before: the last stage's are the shard's.
    return ShardOutcome(shard, tuple(results[-1].succeeded), ingest.first_bar, ingest.last_bar,
                        stage_failures(results))


@dg.op(retry_policy=STEP_RETRY_POLICY, pool=STORE_POOL,
       description="The scans over every symbol the shards left.")
def scan_universe(context: dg.OpExecutionContext, outcomes: list[ShardOutcome], store: StoreResource,
                  candle_source: CandleSourceResource, settings: PipelineSettings) -> None:
    merged = merge_outcomes(outcomes)
    with pipeline_step(context, store, candle_source, settings, TRACKING_STEP) as (pipeline, tracker):
        # A symbol that failed in its shard gets a FAILED scans row, as in a market_data run.
        tracker.begin(CROSS_SECTIONAL_STAGES, [s for s in merged.symbols if s not in merged.succeeded])
        tracker.close()
        fail_if_every_symbol_failed(merged.succeeded, merged.failed)
        window = resolve_window(pipeline, merged.start, merged.end)
        if window is None and merged.first_bar is not None:
            window = window_of_bars(pipeline.calendar, merged.first_bar, merged.last_bar)
        take_over_lost_attempt(context, tracker, CROSS_SECTIONAL_STAGES, merged.succeeded)
        results = run_tracked(pipeline, tracker, CROSS_SECTIONAL_STAGES, merged.succeeded, window)
    _report(context, results, tracker)
    fail_if_every_symbol_failed(results[-1].succeeded, {**merged.failed, **stage_failures(results)})


def _report(context: dg.OpExecutionContext, results: list[StageResult], tracker: RunTracker) -> None:
    for result in results:
        report_stage(context, result, tracker.seconds)


@dg.graph(description="The pipeline of a universe run in shards of symbols, one Celery task per shard.")
def market_data_sharded():
    scan_universe(plan_shards().map(process_shard).collect())


market_data_sharded_job = market_data_sharded.to_job(
    name="market_data_sharded",
    executor_def=candleflow_celery_executor,
    # run monitoring fails a run still going after 2 hours: no worker is left to run its steps
    tags={"candleflow/workload": "universe", "dagster/max_runtime": "7200"},
)


def market_data_retry_config(run: dg.DagsterRun) -> dict:
    """Run config of a per-symbol ``market_data`` re-run over the same window as ``run`` (a run of
    either job): ``candleflow retry-failed`` re-runs a sharded run's failed symbols this way."""
    if run.job_name != market_data_sharded_job.name:
        return dict(run.run_config)
    plan = run.run_config.get("ops", {}).get(plan_shards.name, {}).get("config", {})
    window = {key: plan[key] for key in RunWindow.model_fields if key in plan}
    return {"ops": {TRACKING_STEP: {"config": window}}}
