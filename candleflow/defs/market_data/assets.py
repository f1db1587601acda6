"""The four per-symbol assets, materialized by one range-aware step.

Why one step for four assets: Dagster writes events per asset per partition, one at a time, and the
multiprocess executor starts a fresh Python process per step (see docs/design.md). One step
per run covers every selected asset and every symbol in the run's partition range, runs the stages
in order on the whole batch, and then reports one materialization per asset for each symbol that
succeeded. A symbol that failed gets none, so the UI's partition status stays true, and the step
still succeeds for the others; it fails when no symbol got through every selected stage.
``can_subset`` keeps each asset materializable on its own.

The assets and their checks are the stages of ``candleflow.pipeline.registry``.
"""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
from pydantic import Field

from candleflow.dagster_steps.charts import chart_metadata
from candleflow.dagster_steps.partitions import symbols_partitions
from candleflow.dagster_steps.reporting import check_metadata, report_stage
from candleflow.dagster_steps.step import (
    STEP_RETRY_POLICY,
    STORE_POOL,
    fail_if_every_symbol_failed,
    pipeline_step,
    stage_failures,
    take_over_lost_attempt,
)
from candleflow.market.calendar import ExchangeSessions
from candleflow.pipeline.context import resolve_window
from candleflow.pipeline.registry import PIPELINE, SCAN_SIGNALS, Stage, stage_named
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.tracked import run_tracked
from candleflow.resources import CandleSourceResource, PipelineSettings, StoreResource
from candleflow.settings import read_settings

OWNERS = ["team:market-data"]

#: The exchange calendar of the code location (CANDLEFLOW_CALENDAR), read when the definitions load
#: (as the Celery executor's settings are): the freshness policy below and the daily schedule
#: (``daily_after_close``) follow its close.
SESSIONS = read_settings().sessions()
#: How soon after the close a session's signals are due.
SIGNALS_DUE = timedelta(minutes=30)


def signals_freshness(sessions: ExchangeSessions) -> dg.FreshnessPolicy:
    """A session's signals are stored within ``SIGNALS_DUE`` of its close: the UI marks
    ``scan_signals`` late when no materialization landed in that time after the typical close
    (XNYS: 16:00 to 16:30 New York on weekdays; the daily schedule starts its run 5 minutes after
    the close). An exchange holiday shows as late too: a cron deadline knows days of the week,
    not the exchange calendar."""
    return dg.FreshnessPolicy.cron(deadline_cron=sessions.cron_after_close(SIGNALS_DUE),
                                   lower_bound_delta=SIGNALS_DUE, timezone=sessions.timezone)


FRESHNESS = {SCAN_SIGNALS.name: signals_freshness(SESSIONS)}


def asset_spec(stage: Stage) -> dg.AssetSpec:
    """The asset of ``stage``: its key, what it reads, and how the UI shows it (group, kinds)."""
    return dg.AssetSpec(stage.asset_key, deps=list(stage.reads), description=stage.description,
                        group_name=stage.group, kinds=set(stage.kinds), owners=OWNERS, skippable=True,
                        partitions_def=symbols_partitions, freshness_policy=FRESHNESS.get(stage.name))


def check_specs() -> list[dg.AssetCheckSpec]:
    """Every stage's checks, on its asset. (Specs are built in the decorator, not kept in a
    module-level list: the defs folder loader would load such a list as assets of their own.)"""
    return [dg.AssetCheckSpec(check.name, asset=stage.asset_key, description=check.description)
            for stage in PIPELINE for check in stage.checks]


class RunWindow(dg.Config):
    start: str = Field(default="", description="First session (YYYY-MM-DD); empty = the source's "
                       "default (latest closed session, or everything landed).")
    end: str = Field(default="", description="Last session (YYYY-MM-DD); empty = same as start.")


@dg.multi_asset(
    name="market_data_pipeline",
    specs=[asset_spec(stage) for stage in PIPELINE],
    check_specs=check_specs(),
    can_subset=True,
    partitions_def=symbols_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STEP_RETRY_POLICY,
    pool=STORE_POOL,
)
def market_data_pipeline(context: dg.AssetExecutionContext, config: RunWindow, store: StoreResource,
                         candle_source: CandleSourceResource,
                         settings: PipelineSettings) -> Iterator[dg.AssetCheckResult]:
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    stages = [stage.name for stage in PIPELINE if stage.asset_key in selected]
    symbols = list(context.partition_keys)
    with pipeline_step(context, store, candle_source, settings,
                       context.op_execution_context.op.name) as (pipeline, tracker):
        take_over_lost_attempt(context, tracker, stages, symbols)
        results = run_tracked(pipeline, tracker, stages, symbols,
                              resolve_window(pipeline, config.start, config.end), context.log.info)
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
            asset_key=stage_named(result.stage).asset_key, check_name=outcome.name, passed=outcome.passed,
            metadata=check_metadata(outcome))
