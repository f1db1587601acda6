"""The four stages: raw candles, derived bars, indicators, scan signals."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from candleflow.formula import BarPanel, Scan, evaluate_scans, required_history
from candleflow.market.bars import derive_bars
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.checks import CheckOutcome, aligned_bars, no_unexpected_gaps, ohlc_consistent
from candleflow.market.indicators import IndicatorSpec, compute_indicators, history_bars
from candleflow.market.intervals import BASE_INTERVAL, DERIVED_INTERVALS
from candleflow.market.validation import validate_candles
from candleflow.pipeline.recent_bars import RecentBars
from candleflow.pipeline.result import StageResult, Timer, run_isolated
from candleflow.pipeline.scan_config import ConfiguredScan
from candleflow.pipeline.window import Window, history_window, window_between, window_of_bars
from candleflow.sources.base import CandleSource
from candleflow.store import CandleStore

STAGES = ("raw_candles", "derived_bars", "indicators", "scan_signals")


@dataclass
class PipelineContext:
    store: CandleStore
    source: CandleSource
    calendar: ExchangeSessions
    indicators: Sequence[IndicatorSpec]
    scans: Sequence[ConfiguredScan]
    #: Wall-clock time the run treats as "now" (epoch s); None means the real clock.
    as_of: int | None = None
    #: Bars written by the current ``run_stages`` call, read by its later stages.
    recent: RecentBars = field(init=False)

    def __post_init__(self):
        self.recent = RecentBars(self.store)


def ingest_candles(ctx: PipelineContext, symbols: Sequence[str], window: Window | None) -> StageResult:
    """Fetch from the source, reject bad symbols whole, upsert the rest at the base interval."""
    result = StageResult("raw_candles")
    with Timer(result):
        batch = ctx.source.fetch(symbols, None if window is None else window.sessions)
        result.failed.update(batch.errors)
        clean, rejections = validate_candles(batch.candles)
        result.failed.update({r.symbol: str(r) for r in rejections})
        delivered = set(_symbols_of(clean))
        for symbol in symbols:
            if symbol not in delivered and symbol not in result.failed:
                span = "the default window" if window is None else window.describe()
                result.failed[symbol] = f"{symbol}: no candles from the source for {span}"
        if not clean.empty:
            ctx.store.write_candles(clean, ctx.source.base_interval)
            ctx.recent.keep(ctx.source.base_interval, clean)
            result.record_rows(clean)
        result.succeeded = [s for s in symbols if s not in result.failed]
        result.checks.append(CheckOutcome("valid_candles", len(symbols), dict(result.failed)))
    return result


def derive_all_bars(ctx: PipelineContext, symbols: Sequence[str], window: Window) -> StageResult:
    """5m, 15m, 30m, 1h and 1d bars from the stored 1m bars of the window.

    Symbols with no 1m bars in the window (daily-only data) succeed with nothing to derive.
    """
    result = StageResult("derived_bars")
    with Timer(result):
        minutes = ctx.recent.read(symbols, BASE_INTERVAL, window.start, window.end)
        ctx.recent.forget(BASE_INTERVAL)
        with_minutes = _symbols_of(minutes)
        derived = {}
        for interval in DERIVED_INTERVALS:
            derived[interval] = run_isolated(
                with_minutes,
                lambda batch, interval=interval: derive_bars(
                    minutes[minutes["symbol"].isin(batch)], interval, window.sessions, ctx.as_of),
                result,
            )
        derived = {interval: _without(bars, result.failed) for interval, bars in derived.items()}
        result.checks += [ohlc_consistent(derived), aligned_bars(derived, window.sessions),
                          no_unexpected_gaps(_without(minutes, result.failed), derived, window.sessions)]
        for interval, bars in derived.items():
            if not bars.empty:
                ctx.store.write_candles(bars, interval)
                ctx.recent.keep(interval, bars)
                result.record_rows(bars)
        result.succeeded = [s for s in symbols if s not in result.failed]
    return result


def compute_all_indicators(ctx: PipelineContext, symbols: Sequence[str], window: Window) -> StageResult:
    """Indicator values for the window's bars, on ``history_bars`` bars of stored history."""
    result = StageResult("indicators")
    with Timer(result):
        computed = []
        for interval in _spec_intervals(ctx.indicators):
            specs = [s for s in ctx.indicators if interval in s.intervals]
            history = history_window(ctx.calendar, window, interval, history_bars(specs, interval))
            bars = ctx.recent.read(symbols, interval, history.start, window.end)
            computed.append(run_isolated(
                _symbols_of(bars),
                lambda batch, bars=bars, interval=interval, specs=specs, history=history:
                    compute_indicators(bars[bars["symbol"].isin(batch)], interval, specs,
                                       since=window.start, sessions=history.sessions),
                result,
            ))
        values = _without(pd.concat(computed, ignore_index=True), result.failed) if computed else None
        if values is not None and not values.empty:
            ctx.store.write_indicators(values)
            result.record_rows(values)
        result.succeeded = [s for s in symbols if s not in result.failed]
    return result


def evaluate_signals(ctx: PipelineContext, symbols: Sequence[str], window: Window) -> StageResult:
    """Evaluate every configured scan over the run's symbols; store the matches in the window."""
    result = StageResult("scan_signals")
    with Timer(result):
        bars = {}
        for interval, count in required_history(ctx.scans).items():
            history = history_window(ctx.calendar, window, interval, count)
            bars[interval] = (ctx.recent.read(symbols, interval, history.start, window.end),
                              history.sessions["open"].to_numpy())
        rows = []
        for universe, scans in _scans_by_universe(ctx.scans).items():
            members = [s for s in symbols if universe is None or s in universe]
            if not members:
                continue
            panels = {interval: BarPanel.from_candles(frame[frame["symbol"].isin(members)], interval,
                                                      session_starts=opens)
                      for interval, (frame, opens) in bars.items()}
            for outcome in evaluate_scans(scans, panels, since=window.start):
                if outcome.error:
                    result.failed[outcome.symbol] = f"{outcome.symbol}: {outcome.error}"
                    continue
                if outcome.notes:
                    result.notes[outcome.symbol] = "; ".join(
                        filter(None, [result.notes.get(outcome.symbol), *outcome.notes]))
                rows.extend(
                    {"scan": m.scan, "symbol": m.symbol, "interval": m.interval, "bar_start": m.bar_start,
                     "formula": _formula_of(ctx.scans, m.scan), "term_values": json.dumps(m.values)}
                    for m in outcome.matches
                )
        rows = [row for row in rows if row["symbol"] not in result.failed]
        result.succeeded = [s for s in symbols if s not in result.failed]
        frame = pd.DataFrame(rows, columns=["scan", "symbol", "interval", "bar_start", "formula",
                                            "term_values"])
        ctx.store.replace_signals(frame, [s.name for s in ctx.scans], result.succeeded, window.start)
        result.record_rows(frame)
        result.checks.append(CheckOutcome("symbols_evaluated", len(symbols), dict(result.failed)))
    return result


def resolve_window(ctx: PipelineContext, start: str, end: str) -> Window | None:
    """The explicit window of a run, or None to let the source choose (see CandleSource.fetch)."""
    if not start and not end:
        return None
    first = datetime.fromisoformat(start or end).date()
    last = datetime.fromisoformat(end or start).date()
    return window_between(ctx.calendar, first, last)


def latest_closed_window(ctx: PipelineContext) -> Window:
    now = datetime.fromtimestamp(ctx.as_of, UTC) if ctx.as_of else datetime.now(UTC)
    last = ctx.calendar.last_closed_session(now)
    return window_between(ctx.calendar, last, last)


def run_stages(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str],
               window: Window | None,
               on_stage_done: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run the selected stages in pipeline order; each later stage sees only the survivors.

    ``on_stage_done`` is called with each stage's result as soon as the stage ends.
    """
    ctx.recent = RecentBars(ctx.store)
    try:
        return _run_in_order(ctx, stages, symbols, window, on_stage_done or (lambda result: None))
    finally:
        ctx.recent = RecentBars(ctx.store)  # let the kept frames go


def _run_in_order(ctx: PipelineContext, stages: Sequence[str], symbols: Sequence[str],
                  window: Window | None, done: Callable[[StageResult], None]) -> list[StageResult]:
    results = []
    remaining = list(symbols)
    if "raw_candles" in stages:
        ingest = ingest_candles(ctx, remaining, window)
        results.append(ingest)
        done(ingest)
        remaining = ingest.succeeded
        if window is None and ingest.first_bar is not None:
            window = window_of_bars(ctx.calendar, ingest.first_bar, ingest.last_bar)
    window = window or latest_closed_window(ctx)
    for name, stage in (("derived_bars", derive_all_bars), ("indicators", compute_all_indicators),
                        ("scan_signals", evaluate_signals)):
        if name in stages and remaining:
            outcome = stage(ctx, remaining, window)
            results.append(outcome)
            done(outcome)
            remaining = outcome.succeeded
    return results


def _symbols_of(frame: pd.DataFrame) -> list[str]:
    """Distinct symbols in order of appearance (vectorized: iterating a str column is slow)."""
    return frame["symbol"].unique().tolist() if len(frame) else []


def _without(frame: pd.DataFrame, failed: dict[str, str]) -> pd.DataFrame:
    if frame.empty or not failed:
        return frame
    return frame[~frame["symbol"].isin(list(failed))]


def _spec_intervals(specs: Sequence[IndicatorSpec]) -> list[str]:
    return list(dict.fromkeys(i for spec in specs for i in spec.intervals))


def _scans_by_universe(scans: Sequence[ConfiguredScan]) -> dict[frozenset[str] | None, list[Scan]]:
    """Scans grouped by the universe they are restricted to (None: every symbol of the run)."""
    groups: dict[frozenset[str] | None, list[Scan]] = {}
    for scan in scans:
        groups.setdefault(None if scan.universe is None else frozenset(scan.universe), []).append(scan)
    return groups


def _formula_of(scans: Sequence[Scan], name: str) -> str:
    return next(s.formula for s in scans if s.name == name)
