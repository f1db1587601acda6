"""Deterministic, realistic-looking 1-minute candles for tests, demos and benchmarks.

Every random number is counter-based: a hash (the splitmix64 finalizer) of (seed, symbol, day,
draw), so the numbers for one symbol and session never depend on which other symbols or sessions
were asked for, and whole grids are drawn with a few numpy operations. Normal deviates are
Irwin-Hall sums of four 8-bit uniforms, two per 64-bit hash (mean 0, variance 1, bounded at
+-3.46, steps of 0.007): plenty for synthetic prices and much cheaper than exact normals.

The model, per symbol (constants drawn from the symbol's key): a price level between 5 and 500,
a daily volatility between 1.5% and 2.5%, a per-minute volume level. Days are counted in the
calendar's trading days of the week from 2000-01-03 (holidays included, so the count needs no
holiday list). The log close follows an AR(1)
around the level (phi 0.995, so prices wander without drifting off), always computed from day 0,
so any window sees the same closes. A session opens at the previous weekday's close plus an
overnight gap; its minutes follow a Brownian bridge from that open to its close, with a per-minute
volatility that makes a full session of the calendar (390 minutes on XNYS, 510 on XLON, 1440 on
24/7) move by 0.8 of the daily volatility. Volume has a
U-shaped intraday profile with lognormal noise. About 0.5% of minutes (never a session's first)
have no bar at all, as a vendor prints none for a minute without trades.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import CANDLE_DTYPES, OHLCV_COLUMNS, empty_candles

EPOCH = np.datetime64("2000-01-03", "D")
MISSING_RATE = 0.005
_PHI = 0.995
# Grids are drawn in blocks of about this many cells: temporaries of 128 KB stay in the CPU cache
# and under glibc's mmap threshold, so they are recycled instead of page-faulted in afresh (which
# measured 20-30% slower here with 32k cells, and 40% slower with 8k from per-call overhead).
_BLOCK_ELEMENTS = 16_000
_CELL_COLUMNS = (*OHLCV_COLUMNS, "minutes")

# Words hashed under a (symbol, day) key: the day's draws use 0, minute m uses 2 * (m + 1) + stream.
_DAY_WORD = 0
_NORMALS, _UNIFORMS = 0, 1

_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection of uint64 that scrambles every bit."""
    with np.errstate(over="ignore"):  # the multiplications wrap on purpose
        x = x ^ (x >> _U64(30))
        x *= _U64(0xBF58476D1CE4E5B9)
        x ^= x >> _U64(27)
        x *= _U64(0x94D049BB133111EB)
        x ^= x >> _U64(31)
        return x


def _hash(key: np.ndarray, word: np.ndarray | int) -> np.ndarray:
    """Hash of (key, word), broadcasting; distinct words under one key never collide."""
    return _mix(key ^ _mix(np.asarray(word, dtype=_U64) + _U64(0x9E3779B97F4A7C15)))


def _to_float(small: np.ndarray) -> np.ndarray:
    """uint64 values below 2**63 as float64; through int64, which converts 4x faster than uint64."""
    return small.view(np.int64).astype(np.float64)


def _uniforms(h: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` uniforms in (0, 1), one from each (64 // n)-bit field of ``h``."""
    bits = 64 // n
    mask = _U64((1 << bits) - 1)
    return [
        _to_float((h >> _U64(i * bits)) & mask) * 2.0**-bits + 2.0 ** -(bits + 1)
        for i in range(n)
    ]


def _normals(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two Irwin-Hall normals: the byte sums of the low and high 32 bits of ``h``, standardized."""
    bytes_ = _U64(0x00FF00FF00FF00FF)
    pairs = (h & bytes_) + ((h >> _U64(8)) & bytes_)  # 16-bit lanes
    quads = (pairs & _U64(0x0000FFFF0000FFFF)) + ((pairs >> _U64(16)) & _U64(0x0000FFFF0000FFFF))
    # a byte is uniform on 0..255: four of them have mean 510 and variance 4 * (256**2 - 1) / 12
    scale = np.sqrt(3.0 / (256.0**2 - 1))
    low = (_to_float(quads & _U64(0xFFFFFFFF)) - 510.0) * scale
    high = (_to_float(quads >> _U64(32)) - 510.0) * scale
    return low, high


def _symbol_keys(symbols: Sequence[str], seed: int) -> np.ndarray:
    # 64-bit keys: crc32's 32 bits would give two of a few thousand symbols the same data
    # about once in a thousand universes.
    digests = [hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest() for s in symbols]
    return np.array([int.from_bytes(d, "little") for d in digests], dtype=np.uint64)


@dataclass(frozen=True)
class _Model:
    """What the minute grids of a set of symbols over a set of sessions are drawn from."""

    symbols: ExtensionArray  # sorted, shape (S,), the candle frame's symbol dtype
    daily_vol: np.ndarray  # (S,)
    log_volume: np.ndarray  # (S, D) log of the day's typical per-minute volume
    session_opens: np.ndarray  # int64 (D,) epoch seconds
    session_minutes: np.ndarray  # int64 (D,)
    full_session_minutes: int  # of the calendar's longest regular session
    day_keys: np.ndarray  # uint64 (S, D): key of (symbol, session day)
    log_open: np.ndarray  # (S, D)
    log_close: np.ndarray  # (S, D)


def _log_closes(keys: np.ndarray, level: np.ndarray, vol: np.ndarray, days: np.ndarray):
    """AR(1) log closes on weekdays ``days`` (sorted), shape (S, len(days)), run from day 0."""
    wanted = np.zeros(days[-1] + 1, dtype=bool)
    wanted[days] = True
    out = np.empty((len(days), len(keys)))
    y = np.zeros(len(keys))
    j = 0
    step = max(1, _BLOCK_ELEMENTS // len(keys))
    for first in range(0, days[-1] + 1, step):
        block = np.arange(first, min(first + step, days[-1] + 1))
        innovations = _normals(_hash(keys, block.astype(_U64)[:, None]))[0] * vol
        for day, eps in zip(block, innovations):
            y *= _PHI
            y += eps
            if wanted[day]:
                out[j] = y
                j += 1
    return level[:, None] + out.T


def _model(symbols: Sequence[str], sessions: pd.DataFrame, seed: int,
           calendar: ExchangeSessions) -> _Model:
    names = pd.array(sorted(set(symbols)), dtype=CANDLE_DTYPES["symbol"])
    ordered = sessions.sort_values("open")
    days = np.busday_count(EPOCH, np.array(ordered["session"], dtype="datetime64[D]"),
                           weekmask=calendar.weekmask)
    if days[0] < 1:
        first = ordered["session"].iloc[0]
        raise ValueError(f"synthetic candles need sessions after {EPOCH}, got {first}")
    keys = _symbol_keys(names, seed)
    u_level, u_vol, u_volume = _uniforms(keys, 3)
    vol = 0.015 + 0.01 * u_vol
    path_days = np.unique(np.concatenate([days - 1, days]))
    closes = _log_closes(keys, np.log(5.0) + u_level * np.log(100.0), vol, path_days)
    day_keys = _hash(keys[:, None], days.astype(np.uint64)[None, :])
    gap, day_volume = _normals(_hash(day_keys, _DAY_WORD))
    opens = ordered["open"].to_numpy(np.int64)
    return _Model(
        symbols=names,
        daily_vol=vol,
        log_volume=(np.log(200.0) + u_volume * np.log(100.0))[:, None] + 0.3 * day_volume,
        session_opens=opens,
        session_minutes=(ordered["close"].to_numpy(np.int64) - opens) // 60,
        full_session_minutes=calendar.regular_session_seconds // 60,
        day_keys=day_keys,
        log_open=closes[:, np.searchsorted(path_days, days - 1)] + 0.4 * vol[:, None] * gap,
        log_close=closes[:, np.searchsorted(path_days, days)],
    )


def _session_grid(model: _Model, j: int, rows: slice) -> dict[str, np.ndarray]:
    """Dense (symbol, minute) arrays of session ``j`` for symbols ``rows``: OHLCV and ``minutes``.

    Prices stay far above zero: log closes stay within a few tenths of a level of at least 5.
    """
    n = int(model.session_minutes[j])
    words = 2 * np.arange(1, n + 1, dtype=_U64)
    key = model.day_keys[rows, j : j + 1]
    sigma = (0.8 * model.daily_vol[rows] / np.sqrt(model.full_session_minutes))[:, None]  # per minute
    z_price, z_volume = _normals(_hash(key, words + _U64(_NORMALS)))
    walk = np.cumsum(z_price * sigma, axis=1)
    frac = np.arange(1, n + 1) / n
    start, end = model.log_open[rows, j : j + 1], model.log_close[rows, j : j + 1]
    bridge = start + (end - start) * frac + (walk - walk[:, -1:] * frac)
    edges = np.exp(np.concatenate([start, bridge], axis=1))
    opens, closes = edges[:, :-1], edges[:, 1:]
    u_high, u_low, u_missing = _uniforms(_hash(key, words + _U64(_UNIFORMS)), 3)
    wick = 1.5 * sigma  # times u**2: mostly small wicks, now and then a long one
    high = np.maximum(opens, closes) * (1.0 + wick * u_high * u_high)
    low = np.minimum(opens, closes) / (1.0 + wick * u_low * u_low)
    x = (np.arange(n) + 0.5) / n
    u_shape = np.log(0.3 + 2.1 * (2.0 * x - 1.0) ** 2)
    volume = np.rint(np.exp(model.log_volume[rows, j : j + 1] + u_shape + 0.6 * z_volume))
    present = u_missing >= MISSING_RATE
    present[:, 0] = True  # so the session open is always printed
    return {
        "open": np.round(opens, 2),
        "high": np.round(high, 2),
        "low": np.round(low, 2),
        "close": np.round(closes, 2),
        "volume": np.maximum(volume, 1.0),
        "minutes": present.astype(np.int64),  # 0: no bar in this minute
    }


def _grids(model: _Model):
    """(session index, symbol rows, grid) for every session, a block of symbols at a time."""
    block = max(1, _BLOCK_ELEMENTS // model.full_session_minutes)
    for j in range(len(model.session_opens)):
        for first in range(0, len(model.symbols), block):
            rows = slice(first, first + block)
            yield j, rows, _session_grid(model, j, rows)


def _session_bar(grid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The daily bar of each row of a session grid, as ``derive_bars`` would aggregate it."""
    present = grid["minutes"] > 0
    last = present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
    return {
        "open": grid["open"][:, 0],  # a session's first minute is never missing
        "high": np.where(present, grid["high"], -np.inf).max(axis=1),
        "low": np.where(present, grid["low"], np.inf).min(axis=1),
        "close": grid["close"][np.arange(len(last)), last],
        "volume": grid["volume"].sum(axis=1, where=present),  # whole numbers: exact in any order
        "minutes": grid["minutes"].sum(axis=1),
    }


def _candles(symbols: ExtensionArray, bar_starts: np.ndarray, cells: dict[str, np.ndarray]):
    """Candle frame from (symbol, bar) arrays; cells with ``minutes`` 0 are not bars."""
    keep = cells["minutes"].ravel() > 0
    symbol_of_cell = np.repeat(np.arange(len(symbols)), len(bar_starts))
    return pd.DataFrame(
        {
            "symbol": symbols.take(symbol_of_cell[keep]),
            "bar_start": np.tile(bar_starts, len(symbols))[keep],
            **{name: cells[name].ravel()[keep] for name in _CELL_COLUMNS},
            "complete": np.ones(int(keep.sum()), dtype=bool),
        },
        copy=False,
    )


def synthetic_minutes(symbols: Sequence[str], sessions: pd.DataFrame, seed: int,
                      calendar: ExchangeSessions | None = None) -> pd.DataFrame:
    """1m candle frame for ``symbols`` over ``sessions``, a frame of ``calendar`` (default XNYS,
    ``ExchangeSessions()``)."""
    if len(symbols) == 0 or sessions.empty:
        return empty_candles()
    model = _model(symbols, sessions, seed, calendar or ExchangeSessions())
    offsets = np.concatenate([[0], np.cumsum(model.session_minutes)])
    shape = (len(model.symbols), offsets[-1])
    cells = {name: np.empty(shape, dtype=CANDLE_DTYPES[name]) for name in _CELL_COLUMNS}
    for j, rows, grid in _grids(model):
        for name in _CELL_COLUMNS:
            cells[name][rows, offsets[j] : offsets[j + 1]] = grid[name]
    bar_starts = np.concatenate(
        [t + 60 * np.arange(n) for t, n in zip(model.session_opens, model.session_minutes)]
    )
    return _candles(model.symbols, bar_starts, cells)


def synthetic_daily(symbols: Sequence[str], sessions: pd.DataFrame, seed: int,
                    calendar: ExchangeSessions | None = None) -> pd.DataFrame:
    """Daily candle frame equal to ``derive_bars(synthetic_minutes(...), "1d", sessions)``.

    Each session's minute grid is reduced in place rather than laid out as a 1m frame and passed
    through ``derive_bars``: the same numbers (the tests check it) at a third of the cost, and no
    minute frame in memory.
    """
    if len(symbols) == 0 or sessions.empty:
        return empty_candles()
    model = _model(symbols, sessions, seed, calendar or ExchangeSessions())
    shape = (len(model.symbols), len(model.session_opens))
    cells = {name: np.empty(shape, dtype=CANDLE_DTYPES[name]) for name in _CELL_COLUMNS}
    for j, rows, grid in _grids(model):
        for name, values in _session_bar(grid).items():
            cells[name][rows, j] = values
    return _candles(model.symbols, model.session_opens, cells)
