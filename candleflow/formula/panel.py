"""BarPanel: the candles of one interval as 2-D arrays (symbols x bars) on a common time grid."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..market.frames import OHLCV_COLUMNS
from ..market.intervals import DAILY, check_interval
from ..market.vwap import session_vwap

_REQUIRED_COLUMNS = ("symbol", "bar_start", *OHLCV_COLUMNS)


class BarPanel:
    """Candles of one interval for many symbols, on the union of their bar starts.

    interval    interval name ("1m" ... "1d")
    symbols     list of symbols, one per row (sorted as in the candle frame)
    bar_start   int64 array, ascending union of the bar starts (epoch seconds UTC) of all symbols
    open, high, low, close, volume
                float64 arrays (n_symbols x n_bars), NaN where a symbol has no bar
    complete    bool array (n_symbols x n_bars), True where the symbol has a completed bar
    present     bool array (n_symbols x n_bars), True where the symbol has a bar
    vwap        float64 array, session VWAP (computed on first use; see ``vwap``)

    Missing bars stay missing (NaN): nothing is forward-filled. The formula evaluator counts bars
    per symbol (its own bars), so a symbol without a bar at some grid time is not poisoned by it.
    """

    def __init__(
        self,
        interval: str,
        symbols: Sequence[str],
        bar_start: np.ndarray,
        open: np.ndarray,  # noqa: A002 - the column name
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        complete: np.ndarray | None = None,
        present: np.ndarray | None = None,
        session_starts: np.ndarray | None = None,
    ) -> None:
        self.interval = check_interval(interval)
        self.symbols = [str(s) for s in symbols]
        self.bar_start = np.asarray(bar_start, dtype=np.int64)
        shape = (len(self.symbols), len(self.bar_start))
        arrays = {}
        for name, arr in (("open", open), ("high", high), ("low", low), ("close", close), ("volume", volume)):
            a = np.ascontiguousarray(arr, dtype=np.float64)
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
            arrays[name] = a
        self.open = arrays["open"]
        self.high = arrays["high"]
        self.low = arrays["low"]
        self.close = arrays["close"]
        self.volume = arrays["volume"]
        if len(self.bar_start) > 1 and not (np.diff(self.bar_start) > 0).all():
            raise ValueError("bar_start must be strictly ascending")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be unique")
        self.present = (
            np.isfinite(self.close) if present is None else np.ascontiguousarray(present, dtype=bool)
        )
        if self.present.shape != shape:
            raise ValueError(f"present has shape {self.present.shape}, expected {shape}")
        self.complete = (
            self.present.copy() if complete is None else np.ascontiguousarray(complete, dtype=bool) & self.present
        )
        if self.complete.shape != shape:
            raise ValueError(f"complete has shape {self.complete.shape}, expected {shape}")
        self.session_starts = None if session_starts is None else np.asarray(session_starts, dtype=np.int64)
        self._row = {s: i for i, s in enumerate(self.symbols)}
        self._vwap: np.ndarray | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_candles(
        cls, frame: pd.DataFrame, interval: str, *, session_starts: np.ndarray | None = None
    ) -> "BarPanel":
        """Build a panel from a candle frame (see ``candleflow.market.frames``), vectorized.

        ``session_starts`` (epoch seconds of session opens, ascending) only matters for intraday
        VWAP: without it a session is a UTC calendar day. Raises ValueError on missing columns or
        duplicate (symbol, bar_start) rows.
        """
        check_interval(interval)
        missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"candle frame lacks columns: {', '.join(missing)}")
        n = len(frame)
        if n == 0:
            empty = np.empty((0, 0))
            return cls(interval, [], np.empty(0, np.int64), empty, empty, empty, empty, empty,
                       session_starts=session_starts)
        codes, uniques = pd.factorize(frame["symbol"].to_numpy(), sort=True)
        starts = frame["bar_start"].to_numpy(dtype=np.int64)
        bar_start, col = np.unique(starts, return_inverse=True)
        shape = (len(uniques), len(bar_start))
        present = np.zeros(shape, dtype=bool)
        present[codes, col] = True
        if int(present.sum()) != n:
            raise ValueError("candle frame has duplicate (symbol, bar_start) rows")
        arrays = {}
        for name in OHLCV_COLUMNS:
            a = np.full(shape, np.nan)
            a[codes, col] = frame[name].to_numpy(dtype=np.float64)
            arrays[name] = a
        complete = present.copy()
        if "complete" in frame.columns:
            complete[codes, col] = frame["complete"].to_numpy(dtype=bool)
        return cls(interval, [str(s) for s in uniques], bar_start, complete=complete, present=present,
                   session_starts=session_starts, **arrays)

    # ------------------------------------------------------------------ access

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_bars(self) -> int:
        return len(self.bar_start)

    def rows_of(self, symbols: Sequence[str]) -> np.ndarray:
        """Row index of each symbol, -1 where the panel does not have it."""
        get = self._row.get
        return np.fromiter((get(s, -1) for s in symbols), dtype=np.int64, count=len(symbols))

    def field(self, name: str) -> np.ndarray:
        if name == "vwap":
            return self.vwap
        if name not in OHLCV_COLUMNS:
            raise KeyError(name)
        return getattr(self, name)

    @property
    def vwap(self) -> np.ndarray:
        """Session VWAP: cumulative sum(typical price * volume) / cumulative volume since the
        session's first bar, typical price = (high + low + close) / 3; NaN where the symbol has no
        bar or no volume yet. On daily bars a bar is a whole session, so it is the bar's typical
        price. Sessions: ``session_starts`` if given, else UTC calendar days."""
        if self._vwap is None:
            self._vwap = self._compute_vwap()
        return self._vwap

    def _compute_vwap(self) -> np.ndarray:
        if self.interval == DAILY or self.n_bars == 0:
            out = (self.high + self.low + self.close) / 3.0
            out[~self.present] = np.nan
            return out
        if self.session_starts is not None and len(self.session_starts):
            session = np.searchsorted(self.session_starts, self.bar_start, side="right")
        else:
            session = self.bar_start // 86400
        restart = np.ones(self.n_bars, dtype=bool)
        restart[1:] = session[1:] != session[:-1]
        volume = np.where(self.present, self.volume, np.nan)  # a bar not present is no trade
        out = session_vwap(self.high, self.low, self.close, volume, restart)
        out[~self.present] = np.nan
        return out

    def __repr__(self) -> str:
        return f"BarPanel(interval={self.interval!r}, symbols={self.n_symbols}, bars={self.n_bars})"
