"""Run the selected stages in pipeline order (``candleflow.pipeline.registry``) over a batch."""

from collections.abc import Callable, Sequence

from candleflow.market.affected import affected_bars
from candleflow.pipeline.context import PipelineContext, latest_closed_window
from candleflow.pipeline.recent_bars import RecentBars
from candleflow.pipeline.registry import PIPELINE, RAW_CANDLES, STAGES
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.window import Window, window_of_bars

__all__ = ["STAGES", "PipelineContext", "ingest_candles", "run_stages"]


def run_stages(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str],
               window: Window | None,
               on_stage_done: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run the selected stages in pipeline order; each later stage sees only the survivors.

    ``on_stage_done`` is called with each stage's result as soon as the stage ends.
    """
    ctx.recent = RecentBars(ctx.store)
    ctx.clock = ctx.as_of
    try:
        return _run_in_order(ctx, stages, symbols, window, on_stage_done or (lambda result: None))
    finally:
        ctx.recent = RecentBars(ctx.store)  # let the kept frames go


def ingest_candles(ctx: PipelineContext, symbols: Sequence[str], window: Window | None) -> StageResult:
    """The raw candles stage alone: fetch, validate and store (``stage_functions.ingest_candles``)."""
    return RAW_CANDLES.run(ctx, symbols, window, None)


def _run_in_order(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str],
                  window: Window | None, done: Callable[[StageResult], None]) -> list[StageResult]:
    results = []
    remaining = list(symbols)
    first_new = None
    if RAW_CANDLES.name in stages:
        ingest = ingest_candles(ctx, remaining, window)
        results.append(ingest)
        done(ingest)
        remaining = ingest.succeeded
        first_new = ingest.first_bar
        if window is None and ingest.first_bar is not None:
            window = window_of_bars(ctx.calendar, ingest.first_bar, ingest.last_bar)
    window = window or latest_closed_window(ctx)
    # New bars change each interval from the bar holding the first of them; without new bars
    # (a run of the later stages alone) the whole window is redone.
    since = affected_bars(max(first_new or window.start, window.start), window.sessions)
    for stage in PIPELINE:
        if stage is not RAW_CANDLES and stage.name in stages and remaining:
            outcome = stage.run(ctx, remaining, window, since)
            results.append(outcome)
            done(outcome)
            remaining = outcome.succeeded
    return results
