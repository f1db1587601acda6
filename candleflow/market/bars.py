"""Derived bars (5m, 15m, 30m, 1h, 1d) from 1-minute candles.

Intraday bars are aligned to each session's open, not to the clock: bar_start = open + k * interval,
so XNYS hourly bars start at 09:30, 10:30, ... New York time whatever the UTC offset, and the last
one (15:30-16:00, or the tail before an early close) is shorter than the interval. A daily bar is
one session, stamped with the session's open. Buckets with no 1m bar give no bar (no forward fill).
Only the regular hours [open, close) make bars: input outside them (pre-market and after-hours
minutes, which are stored as 1m candles) is left out. With ``extended_hours_bars`` (an
``ExchangeSessions`` setting) intraday bars are made of the extended hours instead, aligned to
their start (XNYS: 04:00 New York); a daily bar stays the regular session.

The input is sorted by (symbol, bar_start), so each output bar is a run of consecutive rows and
every aggregate is a numpy ``reduceat`` over the run starts: no sort and no groupby. The input may
be 1m bars or any finer derived interval that divides the output on the session grid (15m from 5m,
1d from 30m; ``candleflow.market.affected.BUILT_FROM``): its ``minutes`` are summed.
"""

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from candleflow.market.calendar import HOURS_COLUMNS, PREVIOUS_SESSION, ExchangeSessions, bar_hours, session_index
from candleflow.market.frames import CANDLE_DTYPES, empty_candles
from candleflow.market.intervals import (
    BASE_INTERVAL,
    DAILY,
    DERIVED_INTERVALS,
    INTRADAY_SECONDS,
    check_interval,
)


def bar_window_ends(bars: pd.DataFrame, calendar: ExchangeSessions) -> np.ndarray:
    """Window end of each stored bar (columns interval, bar_start): min(bar_start + interval, its
    session's close), the close for a daily bar; what ``complete`` is judged by."""
    t = bars["bar_start"].to_numpy(np.int64)
    sessions = calendar.sessions_near(int(t.min()), int(t.max()))
    session = session_index(t, sessions, hours="bars", outside=PREVIOUS_SESSION)
    close = sessions["close"].to_numpy(np.int64)[session]
    bar_close = sessions["bar_close"].to_numpy(np.int64)[session]
    seconds = bars["interval"].map(INTRADAY_SECONDS).fillna(0).to_numpy(np.int64)
    return np.where(bars["interval"].to_numpy() == DAILY, close, np.minimum(t + seconds, bar_close))


def _run_starts(new_symbol: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal (symbol, key) starts; ``new_symbol[i]`` flags row i+1."""
    new_run = np.empty(len(keys), dtype=bool)
    new_run[0] = True
    new_run[1:] = new_symbol | (keys[1:] != keys[:-1])
    return np.flatnonzero(new_run)


def symbol_starts(symbols: ExtensionArray, bar_start: np.ndarray) -> np.ndarray:
    """Row positions where each symbol's rows begin (``symbols``: a candle frame's symbol array).

    ValueError unless the rows are sorted by (symbol, bar_start) without duplicate bars, which is
    what lets callers treat each symbol, and each bar, as one run of consecutive rows.
    """
    new_symbol = np.asarray(symbols[1:] != symbols[:-1], dtype=bool)
    starts = np.flatnonzero(np.concatenate(([True], new_symbol)))
    if not (
        (new_symbol | (bar_start[1:] > bar_start[:-1])).all()
        and pd.Series(symbols.take(starts)).is_unique
    ):
        raise ValueError(
            "candles must be sorted by (symbol, bar_start) without duplicate bars; "
            "pass them through candleflow.market.frames.as_candle_frame"
        )
    return starts


def _data_horizon(
    new_group: np.ndarray, data_end: np.ndarray, close: np.ndarray, as_of: int
) -> np.ndarray:
    """Per output bar, when the data of its (symbol, session) end, by the rule in derive_bars.

    ``new_group`` flags the bars that begin a (symbol, session); ``data_end`` is how far each bar's
    input reaches (its last input row's ``_input_reach``) and ``close`` its session's close.
    """
    group_starts = np.flatnonzero(new_group)
    group_sizes = np.diff(np.append(group_starts, len(new_group)))
    group_data_end = data_end[group_starts + group_sizes - 1]
    live = np.repeat(np.maximum(as_of, group_data_end), group_sizes)
    return np.where(as_of >= close, close, live)


def _input_reach(t: np.ndarray, complete: np.ndarray, window_end: np.ndarray) -> np.ndarray:
    """How far the data of each input bar is known to reach: its window end if it is complete,
    else one minute past its start (for 1m input: bar_start + 60, the rule in derive_bars).

    Taking the last input row of a (symbol, session) is exact: a complete input bar proves data
    up to its end, an incomplete one proves at least its first minute, and an output bar ending
    between that and the true last minute has its last input bar complete or is later."""
    return np.where(complete, window_end, t + 60)


def _check_divides(source: str, interval: str) -> None:
    check_interval(interval)
    check_interval(source)
    if interval not in DERIVED_INTERVALS:
        raise ValueError(f"cannot derive {interval!r} bars; derived intervals: {DERIVED_INTERVALS}")
    if source == BASE_INTERVAL or (source != DAILY and interval == DAILY):
        return
    seconds, source_seconds = INTRADAY_SECONDS.get(interval), INTRADAY_SECONDS.get(source)
    if source == DAILY or seconds <= source_seconds or seconds % source_seconds:
        raise ValueError(f"cannot derive {interval} bars from {source} bars")


def derive_bars(
    minutes: pd.DataFrame, interval: str, sessions: pd.DataFrame, as_of: int | None = None,
    source: str = BASE_INTERVAL,
) -> pd.DataFrame:
    """Aggregate a candle frame of ``source`` bars (1m by default) into ``interval`` bars.

    ``sessions`` has the columns of ``ExchangeSessions.sessions`` (``open``, ``close`` epoch s;
    intraday bars are made of ``bar_open``, ``bar_close``).
    A bar is complete when its window end, min(bar_start + interval, session close), is at or before
    the data horizon of its symbol's session: the session close when ``as_of`` is None or past the
    close, else the later of ``as_of`` and (that symbol's last 1m bar_start in the session + 60).
    From a coarser ``source`` the last minute is known through the input's ``complete`` flags
    (``_input_reach``), which gives the same flags as deriving from the 1m bars.
    """
    _check_divides(source, interval)
    ordered = sessions.sort_values("open")
    hours = bar_hours(interval)
    opens, closes = (ordered[column].to_numpy(np.int64) for column in HOURS_COLUMNS[hours])
    session = session_index(minutes["bar_start"].to_numpy(np.int64), ordered, hours=hours)
    if (session < 0).any():
        minutes, session = minutes[session >= 0], session[session >= 0]
    if minutes.empty:
        return empty_candles()
    symbols = minutes["symbol"].array
    t = minutes["bar_start"].to_numpy(np.int64)
    new_symbol = np.zeros(len(t) - 1, dtype=bool)
    new_symbol[symbol_starts(symbols, t)[1:] - 1] = True

    if interval == DAILY:
        bar_start = opens[session]
        window_end = closes[session]
    else:
        seconds = INTRADAY_SECONDS[interval]
        bar_start = t - (t - opens[session]) % seconds
        window_end = np.minimum(bar_start + seconds, closes[session])

    starts = _run_starts(new_symbol, bar_start)
    ends = np.append(starts[1:], len(t))
    if as_of is None:
        complete = np.ones(len(starts), dtype=bool)
    else:
        bar_session = session[starts]
        new_group = np.concatenate(([True], new_symbol))[starts]
        new_group[1:] |= bar_session[1:] != bar_session[:-1]
        if source == BASE_INTERVAL:
            reach = t + 60
        else:
            input_end = np.minimum(t + INTRADAY_SECONDS[source], closes[session])
            reach = _input_reach(t, minutes["complete"].to_numpy(bool), input_end)
        horizon = _data_horizon(new_group, reach[ends - 1], closes[bar_session], as_of)
        complete = window_end[starts] <= horizon
    if source == BASE_INTERVAL:
        counts = ends - starts
    else:
        counts = np.add.reduceat(minutes["minutes"].to_numpy(np.int64), starts)

    def column(name: str) -> np.ndarray:
        return minutes[name].to_numpy(np.float64)

    return pd.DataFrame(
        {
            "symbol": pd.Series(symbols.take(starts)).astype(CANDLE_DTYPES["symbol"]),
            "bar_start": bar_start[starts],
            "open": column("open")[starts],
            "high": np.maximum.reduceat(column("high"), starts),
            "low": np.minimum.reduceat(column("low"), starts),
            "close": column("close")[ends - 1],
            "volume": np.add.reduceat(column("volume"), starts),
            "minutes": counts.astype(np.int64),
            "complete": complete,
        },
        copy=False,
    )
