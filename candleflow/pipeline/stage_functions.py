"""The four stage functions: raw candles, derived bars, indicators, scan signals.

Each takes the run's context, the ``StageResult`` to fill (named and timed by its registry entry,
``candleflow.pipeline.registry``), the symbols still in the run, the window, and from which bar
each interval changes (``since``; None for the raw candles, which find it out).
"""

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from candleflow.formula import BarPanel, Scan, evaluate_scans, required_history
from candleflow.market.affected import BUILT_FROM
from candleflow.market.bars import derive_bars
from candleflow.market.calendar import session_parts
from candleflow.market.checks import CheckOutcome, aligned_bars, no_unexpected_gaps, ohlc_consistent
from candleflow.market.frames import as_candle_frame
from candleflow.market.indicators import IndicatorSpec, compute_indicators, history_bars
from candleflow.market.intervals import BASE_INTERVAL
from candleflow.market.validation import validate_candles
from candleflow.pipeline.chunks import no_candles_message
from candleflow.pipeline.context import PipelineContext
from candleflow.pipeline.result import StageResult, run_isolated
from candleflow.pipeline.scan_config import ConfiguredScan, ranks_across_symbols
from candleflow.pipeline.window import Window, history_window


def ingest_candles(ctx: PipelineContext, result: StageResult, symbols: Sequence[str], window: Window | None,
                   since: Mapping[str, int] | None = None) -> None:
    """Fetch from the source, reject bad symbols whole, upsert the rest at the base interval.

    ``since`` is always None: the later stages' ``since`` is found from the bars ingested here."""
    batch = ctx.source.fetch(symbols, None if window is None else window.sessions)
    result.failed.update(batch.errors)
    if ctx.as_of is None:
        ctx.clock = batch.as_of
    clean, rejections = validate_candles(batch.candles, ctx.calendar, batch.files)
    clean = clean.drop(columns="file", errors="ignore")
    result.failed.update({r.symbol: str(r) for r in rejections})
    delivered = set(_symbols_of(clean))
    unchanged = set(batch.unchanged)
    for symbol in symbols:
        if symbol in unchanged and symbol not in result.failed:
            result.notes[symbol] = f"{symbol}: nothing new from the source"
        elif symbol not in delivered and symbol not in result.failed:
            result.failed[symbol] = no_candles_message(symbol, window)
            result.missing.add(symbol)
    if not clean.empty:
        ctx.store.write_candles(_marked_with_session_parts(clean, ctx), ctx.source.base_interval)
        ctx.recent.keep(ctx.source.base_interval, clean)
        result.record_rows(clean, ctx.source.base_interval)
    result.checks.append(CheckOutcome("valid_candles", len(symbols), dict(result.failed)))


def _marked_with_session_parts(candles: pd.DataFrame, ctx: PipelineContext) -> pd.DataFrame:
    """1m candles with the part of the session each is in (``part``: pre, regular, post), as
    stored; vendors print minutes in the extended hours, which make no derived bar."""
    if ctx.source.base_interval != BASE_INTERVAL:
        return candles
    times = candles["bar_start"].to_numpy(np.int64)
    sessions = ctx.calendar.sessions_near(int(times.min()), int(times.max()))
    return candles.assign(part=session_parts(times, sessions))


def derive_all_bars(ctx: PipelineContext, result: StageResult, symbols: Sequence[str], window: Window,
                    since: Mapping[str, int]) -> None:
    """5m, 15m, 30m, 1h and 1d bars of the window, each interval from its bar at ``since`` on.

    5m bars come from the stored 1m bars, each coarser interval from the finer bars it is built of
    (``BUILT_FROM``): the ones derived here, and the stored ones before them. Nothing is written
    unless every interval of a symbol was derived. Symbols with no 1m bars in the window
    (daily-only data) succeed with nothing to derive. First, the stored bars of ``symbols`` that
    earlier runs left open and whose window has passed by "now" are marked complete.
    """
    completed = ctx.store.complete_ended_bars(symbols, ctx.now(), ctx.calendar)
    if completed:
        ctx.recent.forget_all()  # what was kept of those bars says they are open
    for symbol, count in completed.items():
        result.notes[symbol] = f"{symbol}: bars left open by earlier runs, now complete: {count}"
    minutes = ctx.recent.read(symbols, BASE_INTERVAL, since["5m"], window.end)
    ctx.recent.forget(BASE_INTERVAL)
    with_minutes = _symbols_of(minutes)
    derived = {BASE_INTERVAL: minutes}
    derived_since = {BASE_INTERVAL: since["5m"], **{i: since[i] for i in BUILT_FROM}}
    for interval, source in BUILT_FROM.items():
        finer = _finer_bars(ctx, with_minutes, source, since[interval], derived_since[source],
                            derived[source])
        derived[interval] = run_isolated(
            with_minutes,
            lambda batch, finer=finer, interval=interval, source=source: derive_bars(
                finer[finer["symbol"].isin(batch)], interval, window.sessions, ctx.now(), source),
            result,
        )
    del derived[BASE_INTERVAL]
    derived = {interval: _without(bars, result.failed) for interval, bars in derived.items()}
    # Only bars whose every minute was read here can be checked against the minutes.
    whole = {interval: bars for interval, bars in derived.items() if since[interval] == since["5m"]}
    result.checks += [ohlc_consistent(derived), aligned_bars(derived, window.sessions),
                      no_unexpected_gaps(_without(minutes, result.failed), whole, window.sessions)]
    for interval, bars in derived.items():
        if not bars.empty:
            ctx.store.write_candles(bars, interval)
            ctx.recent.keep(interval, bars)
            result.record_rows(bars, interval)


def _finer_bars(ctx: PipelineContext, symbols: list[str], interval: str, start: int, fresh_start: int,
                fresh: pd.DataFrame) -> pd.DataFrame:
    """Bars of ``interval`` from ``start`` on: the stored ones before ``fresh_start``, then
    ``fresh`` (just derived, not yet written)."""
    if start == fresh_start or not symbols:
        return fresh
    stored = ctx.store.read_candles(symbols, interval, start, fresh_start)
    return as_candle_frame(pd.concat([stored, fresh], ignore_index=True))


def compute_all_indicators(ctx: PipelineContext, result: StageResult, symbols: Sequence[str], window: Window,
                           since: Mapping[str, int]) -> None:
    """Indicator values of each interval's bars from ``since`` on, on ``history_bars`` bars of
    stored history."""
    computed = []
    for interval in _spec_intervals(ctx.indicators):
        specs = [s for s in ctx.indicators if interval in s.intervals]
        history = history_window(ctx.calendar, window, interval, history_bars(specs, interval))
        bars = ctx.recent.read(symbols, interval, history.start, window.end)
        computed.append(run_isolated(
            _symbols_of(bars),
            lambda batch, bars=bars, interval=interval, specs=specs, history=history:
                compute_indicators(bars[bars["symbol"].isin(batch)], interval, specs,
                                   since=since[interval], sessions=history.sessions),
            result,
        ))
    values = _without(pd.concat(computed, ignore_index=True), result.failed) if computed else None
    if values is not None and not values.empty:
        ctx.store.write_indicators(values)
        result.record_rows(values)


def evaluate_signals(ctx: PipelineContext, result: StageResult, symbols: Sequence[str], window: Window,
                     since: Mapping[str, int]) -> None:
    """Evaluate every configured scan over the run's symbols; store the matches from the scan
    interval's bar at ``since`` on, replacing the stored ones there.

    A scan with a cross-sectional function is evaluated over its whole universe (its own, else
    ``ctx.universe``), from the stored bars of the symbols outside the run, so that a run over
    some symbols ranks them as a run over all would; only the run's symbols' signals are stored.
    """
    groups = [(scans, *_scan_symbols(ctx, symbols, universe, ranks))
              for (universe, ranks), scans in _scans_by_universe(ctx.scans).items()]
    needed = list(dict.fromkeys(s for _, _, in_panel in groups for s in in_panel))
    bars = {}
    for interval, count in required_history(ctx.scans).items():
        history = history_window(ctx.calendar, window, interval, count)
        bars[interval] = (ctx.recent.read(needed, interval, history.start, window.end),
                          history.sessions["bar_open"].to_numpy())
    rows = []
    for scans, members, in_panel in groups:
        if not members:
            continue
        panels = {interval: BarPanel.from_candles(frame[frame["symbol"].isin(in_panel)], interval,
                                                  session_starts=opens)
                  for interval, (frame, opens) in bars.items()}
        for interval, same_interval in _by_interval(scans).items():
            for outcome in evaluate_scans(same_interval, panels, since=since[interval],
                                          time_limit_s=ctx.scan_time_limit_s):
                if outcome.symbol in members:
                    rows.extend(_signal_rows(ctx, result, outcome))
    rows = [row for row in rows if row["symbol"] not in result.failed]
    result.succeeded = [s for s in symbols if s not in result.failed]  # whose signals are replaced
    frame = pd.DataFrame(rows, columns=["scan", "symbol", "interval", "bar_start", "formula",
                                        "term_values"])
    for interval, scans in _by_interval(ctx.scans).items():
        ctx.store.replace_signals(frame[frame["interval"] == interval], [s.name for s in scans],
                                  result.succeeded, since[interval])
    result.record_rows(frame)
    result.checks.append(CheckOutcome("symbols_evaluated", len(symbols), dict(result.failed)))


def _signal_rows(ctx: PipelineContext, result: StageResult, outcome) -> list[dict]:
    """The signal rows of one symbol's scan outcome; its error or notes go to ``result``."""
    if outcome.error:
        result.failed[outcome.symbol] = f"{outcome.symbol}: {outcome.error}"
        return []
    if outcome.notes:
        result.notes[outcome.symbol] = "; ".join(
            filter(None, [result.notes.get(outcome.symbol), *outcome.notes]))
    return [{"scan": m.scan, "symbol": m.symbol, "interval": m.interval, "bar_start": m.bar_start,
             "formula": _formula_of(ctx.scans, m.scan), "term_values": json.dumps(m.values)}
            for m in outcome.matches]


def _symbols_of(frame: pd.DataFrame) -> list[str]:
    """Distinct symbols in order of appearance (vectorized: iterating a str column is slow)."""
    return frame["symbol"].unique().tolist() if len(frame) else []


def _without(frame: pd.DataFrame, failed: dict[str, str]) -> pd.DataFrame:
    if frame.empty or not failed:
        return frame
    return frame[~frame["symbol"].isin(list(failed))]


def _spec_intervals(specs: Sequence[IndicatorSpec]) -> list[str]:
    return list(dict.fromkeys(i for spec in specs for i in spec.intervals))


def _by_interval(scans: Sequence[Scan]) -> dict[str, list[Scan]]:
    return _grouped(scans, lambda scan: scan.interval)


def _scans_by_universe(scans: Sequence[ConfiguredScan]) -> dict[tuple[frozenset[str] | None, bool],
                                                                  list[Scan]]:
    """Scans grouped by the universe they are restricted to (None: every symbol) and by whether
    they rank across it (use a cross-sectional function)."""
    return _grouped(scans, lambda scan: (None if scan.universe is None else frozenset(scan.universe),
                                         ranks_across_symbols(scan)))


def _scan_symbols(ctx: PipelineContext, symbols: Sequence[str], universe: frozenset[str] | None,
                  ranks: bool) -> tuple[set[str], list[str]]:
    """The run's symbols that scans restricted to ``universe`` store signals for, and the symbols
    their panel holds: the same, or, for scans that rank, all of ``universe`` (None: the run's
    symbols and ``ctx.universe``), read from the store where they are not in the run."""
    members = [s for s in symbols if universe is None or s in universe]
    if not ranks or not members:
        return set(members), members
    whole = [*symbols, *ctx.universe] if universe is None else universe
    return set(members), list(dict.fromkeys(whole))


def _grouped(scans: Sequence[Scan], key: Callable[[Scan], object]) -> dict:
    """``scans`` by ``key``, in order of first appearance."""
    groups: dict = {}
    for scan in scans:
        groups.setdefault(key(scan), []).append(scan)
    return groups


def _formula_of(scans: Sequence[Scan], name: str) -> str:
    return next(s.formula for s in scans if s.name == name)
