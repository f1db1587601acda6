"""The four per-symbol assets, materialized by one range-aware step.

Why one step for four assets: Dagster writes events per asset per partition, one at a time, and the
multiprocess executor starts a fresh Python process per step (see README, "Design"). One step
per run covers every selected asset and every symbol in the run's partition range, runs the stages
in order on the whole batch, and then reports one materialization per asset for each symbol that
succeeded. A symbol that failed gets none, so the UI's partition status stays true, and the step
still succeeds for the others; it fails when no symbol got through every selected stage.
``can_subset`` keeps each asset materializable on its own.
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from candleflow.assets.charts import chart_metadata
from candleflow.assets.partitions import symbols_partitions
from candleflow.assets.reporting import report_stage
from candleflow.assets.step import (
    STEP_RETRY_POLICY,
    fail_if_every_symbol_failed,
    pipeline_step,
    stage_failures,
    take_over_lost_attempt,
)
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.stages import STAGES, resolve_window
from candleflow.pipeline.tracked import run_tracked
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource

OWNERS = ["team:market-data"]

# Groups tell the story in the UI's asset graph: data comes in, becomes bars, then analytics.
ASSET_SPECS = [
    dg.AssetSpec("raw_candles", group_name="ingest", kinds={"pandas", "sql"},
                 description="1-minute (or daily-only) OHLCV candles from the candle source, "
                 "validated by the bad-row rules and upserted into the `candles` table. A rejected "
                 "symbol gets no materialization and fails the `valid_candles` check."),
    dg.AssetSpec("derived_bars", deps=["raw_candles"], group_name="bars", kinds={"numpy", "sql"},
                 description="5m, 15m, 30m, 1h bars aligned to the session open and daily bars per "
                 "session, each with its 1m-bar count and completeness, in the `candles` table."),
    dg.AssetSpec("indicators", deps=["derived_bars"], group_name="analytics", kinds={"talib", "sql"},
                 description="SMA, EMA, RSI, MACD, Bollinger bands, ATR and session VWAP per the "
                 "indicator spec, in TA-Lib's conventions, in the `indicator_values` table. "
                 "Materializations carry a `chart` (daily closes, moving averages, signals) for "
                 "every symbol of a run of up to 5 symbols, else for up to 5 symbols with a signal."),
    dg.AssetSpec("scan_signals", deps=["derived_bars", "indicators"], group_name="analytics",
                 kinds={"numpy", "sql"},
                 description="Matches of the configured scan formulas for the run's symbols, in the "
                 "`signals` table with the values of each formula's terms; rank, percentile and "
                 "zscore are taken over the scan's whole universe."),
]
SPECS = [
    spec.replace_attributes(owners=OWNERS, skippable=True, partitions_def=symbols_partitions)
    for spec in ASSET_SPECS
]
CHECK_SPECS = [
    dg.AssetCheckSpec("valid_candles", asset="raw_candles",
                      description="No symbol rejected by the bad-row rules or the source."),
    dg.AssetCheckSpec("ohlc_consistent", asset="derived_bars",
                      description="low <= open, close <= high; positive prices; volume >= 0."),
    dg.AssetCheckSpec("aligned_bars", asset="derived_bars",
                      description="Bars start on the session grid, no duplicates."),
    dg.AssetCheckSpec("no_unexpected_gaps", asset="derived_bars",
                      description="Derived bars exist exactly where 1m bars exist."),
    dg.AssetCheckSpec("symbols_evaluated", asset="scan_signals",
                      description="Every symbol evaluated by every scan without error."),
]
CHECK_ASSET = {spec.name: spec.asset_key for spec in CHECK_SPECS}


class RunWindow(dg.Config):
    start: str = Field(default="", description="First session (YYYY-MM-DD); empty = the source's "
                       "default (latest closed session, or everything landed).")
    end: str = Field(default="", description="Last session (YYYY-MM-DD); empty = same as start.")


@dg.multi_asset(
    name="market_data_pipeline",
    specs=SPECS,
    check_specs=CHECK_SPECS,
    can_subset=True,
    partitions_def=symbols_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STEP_RETRY_POLICY,
)
def market_data_pipeline(context: dg.AssetExecutionContext, config: RunWindow, store: StoreResource,
                         candle_source: CandleSourceResource,
                         settings: PipelineSettings) -> Iterator[dg.AssetCheckResult]:
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    stages = [stage for stage in STAGES if stage in selected]
    symbols = list(context.partition_keys)
    with pipeline_step(context, store, candle_source, settings,
                       context.op_execution_context.op.name) as (pipeline, tracker):
        take_over_lost_attempt(context, tracker, stages, symbols)
        results = run_tracked(pipeline, tracker, stages, symbols,
                              resolve_window(pipeline, config.start, config.end))
        charts = chart_metadata(context, pipeline.store, pipeline.indicators, results)
    for result in results:
        report_stage(context, result, tracker.seconds, charts.get(result.stage, {}))
        yield from _check_results(context, result)
    if results:  # each stage ran on the survivors of the one before: the last one's got through
        fail_if_every_symbol_failed(results[-1].succeeded, stage_failures(results))


def _check_results(context: dg.AssetExecutionContext,
                   result: StageResult) -> Iterator[dg.AssetCheckResult]:
    selected = {key.name for key in context.selected_asset_check_keys}
    for outcome in result.checks:
        if outcome.name not in selected:
            continue
        yield dg.AssetCheckResult(
            asset_key=CHECK_ASSET[outcome.name], check_name=outcome.name, passed=outcome.passed,
            metadata={"symbols_checked": outcome.symbols_checked,
                      "symbols_failed": len(outcome.failures),
                      "failures": dg.MetadataValue.json(dict(list(outcome.failures.items())[:50]))},
        )
