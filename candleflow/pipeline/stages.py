"""Run the selected stages in pipeline order (``candleflow.pipeline.registry``) over a batch."""

import time
from collections.abc import Callable, Sequence

from candleflow.market.affected import affected_bars
from candleflow.pipeline.chunks import (ChunkLedger, ChunkProgress, ChunkedResults, release_freed_memory,
                                       session_chunks, sessions_per_chunk)
from candleflow.pipeline.context import PipelineContext, latest_closed_window
from candleflow.pipeline.recent_bars import RecentBars
from candleflow.pipeline.registry import PIPELINE, RAW_CANDLES, STAGES
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.window import Window, window_of_bars

__all__ = ["STAGES", "PipelineContext", "ingest_candles", "run_stages"]


def run_stages(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str],
               window: Window | None,
               on_stage_done: Callable[[StageResult], None] | None = None, *,
               ledger: ChunkLedger | None = None,
               on_chunk_done: Callable[[ChunkProgress], None] | None = None) -> list[StageResult]:
    """Run the selected stages in pipeline order; each later stage sees only the survivors.

    A window of more sessions than one chunk holds (``PipelineContext.chunk_bars``) runs chunk
    by chunk (``candleflow.pipeline.chunks``): ``ledger`` skips the chunks an earlier attempt
    finished and records the others, ``on_chunk_done`` hears each chunk's progress.
    ``on_stage_done`` is called with each stage's result as soon as the stage ends (of a chunked
    run: the merged results, once the last chunk ends).
    """
    ctx.recent = RecentBars(ctx.store)
    ctx.clock = ctx.as_of
    done = on_stage_done or (lambda result: None)
    try:
        chunks = _chunks_of(ctx, symbols, window)
        if len(chunks) == 1:
            return _run_in_order(ctx, stages, symbols, window, done)
        results = _run_chunked(ctx, stages, symbols, window, chunks, ledger, on_chunk_done)
        for result in results:
            done(result)
        return results
    finally:
        ctx.recent = RecentBars(ctx.store)  # let the kept frames go


def _chunks_of(ctx: PipelineContext, symbols: Sequence[str], window: Window | None) -> list[Window | None]:
    if window is None:  # the source's default: what it holds now (one session, or what landed)
        return [None]
    size = sessions_per_chunk(ctx.calendar, ctx.source.base_interval, len(symbols), ctx.chunk_bars)
    return session_chunks(window, size)


def _run_chunked(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str], window: Window,
                 chunks: list[Window], ledger: ChunkLedger | None,
                 on_chunk_done: Callable[[ChunkProgress], None] | None) -> list[StageResult]:
    finished = ledger.finished() if ledger is not None else {}
    ordered = [stage.name for stage in PIPELINE if stage.name in stages]
    chunked = ChunkedResults(symbols, window)
    sessions_done = resumed = rows = 0
    started = time.perf_counter()
    for index, chunk in enumerate(chunks):
        if not chunked.remaining():
            break
        span = (chunk.first_session, chunk.last_session)
        if span in finished:
            chunked.add_finished(ordered, finished[span])
            resumed += len(chunk.sessions)
        else:
            chunk_started = time.perf_counter()
            results = _run_in_order(ctx, stages, chunked.remaining(), chunk, lambda result: None)
            failures = chunked.add(results)
            written = sum(result.rows_written for result in results)
            rows += written
            if ledger is not None:
                ledger.record(chunk, failures, written, time.perf_counter() - chunk_started)
        sessions_done += len(chunk.sessions)
        release_freed_memory()
        if on_chunk_done is not None:
            on_chunk_done(ChunkProgress(chunk, index, len(chunks), sessions_done, len(window.sessions),
                                        rows, time.perf_counter() - started, resumed))
    return chunked.merged(ordered)


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
