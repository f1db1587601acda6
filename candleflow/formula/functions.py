"""The function registry: every function of the language is declared once, here.

A declaration gives the name, the parameters (name, kind, default, allowed range), the result kind,
the lookback (bars of history before the current bar that one value needs, as TA-Lib counts it),
whether the function is *smoothed* (recursive, so it needs a warm-up), where it runs (per row on
2-D blocks, across symbols, or on another interval) and the implementation. The parser binds and
checks arguments from these declarations; the history inference reads the lookbacks; the evaluator
calls the implementations. Nothing else lists functions.

Implementations take the evaluation context and the bound arguments in declaration order: series
and condition arguments arrive as 2-D float64 arrays (symbols x bars), literal arguments as Python
numbers / strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import talib


def _ta(name: str):
    """The TA-Lib function without talib's pandas/polars dispatch wrapper (same results on
    float64 arrays, a few microseconds less per call, which adds up over thousands of symbols)."""
    fn = getattr(talib, name)
    return getattr(fn, "__wrapped__", fn)


_EMA, _RSI, _MACD, _BBANDS, _ATR = (_ta(n) for n in ("EMA", "RSI", "MACD", "BBANDS", "ATR"))

from . import kernels as k
from .limits import MAX_WINDOW
from .nodes import COND, NUMBER

# parameter kinds
SERIES = "series"  # a numeric expression (a constant is broadcast to a series)
CONDITION = "condition"  # a condition expression
ANY = "any"  # a numeric or condition expression
WINDOW = "window"  # a whole-number literal, in bars
LITERAL = "number"  # a number literal
INTERVAL = "interval"  # an interval string literal

# where a function runs
ROWWISE = "rowwise"
CROSS_SECTION = "cross_section"
TIMEFRAME = "timeframe"

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: object = REQUIRED
    min: float | None = None
    max: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def signature(self) -> str:
        if self.required:
            return self.name
        return f"{self.name}={self.default}"


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    result: str
    summary: str
    impl: Callable | None
    lookback: Callable[[dict], int] = lambda a: 0
    smoothed: bool = False
    category: str = ROWWISE
    #: ``rsi(14)`` means ``rsi(close, 14)``: a leading series parameter with a default may be
    #: skipped when the first argument is a number literal.
    optional_leading_series: bool = False
    #: extra validation of literal arguments; returns an error message or None
    check: Callable[[dict], str | None] | None = None
    example: str = ""

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(p.signature() for p in self.params)})"

    @property
    def min_args(self) -> int:
        return sum(1 for p in self.params if p.required)

    @property
    def max_args(self) -> int:
        return len(self.params)


FUNCTIONS: dict[str, Function] = {}


def _register(fn: Function) -> Function:
    FUNCTIONS[fn.name] = fn
    return fn


def _x(default: object = REQUIRED) -> Param:
    return Param("x", SERIES, default)


def _n(default: object = REQUIRED, lo: int = 2) -> Param:
    return Param("n", WINDOW, default, lo, MAX_WINDOW)


# ------------------------------------------------------------------ implementations


def _ta1(ctx, fn, x, *params):
    return ctx.talib(fn, [x], params, 1)[0]


def _macd(ctx, x, fast, slow, signal, out: int):
    res = ctx.memo_for(x, ("MACD", fast, slow, signal), lambda: ctx.talib(_MACD, [x], (fast, slow, signal), 3))
    return res[out]


def _bbands(ctx, x, n, kk, out: int):
    res = ctx.memo_for(x, ("BBANDS", n, float(kk)), lambda: ctx.talib(_BBANDS, [x], (n, float(kk), float(kk), 0), 3))
    return res[out]


def _atr(ctx, n):
    return ctx.talib(_ATR, [ctx.field("high"), ctx.field("low"), ctx.field("close")], (n,), 1)[0]


def _crossover(ctx, a, b):
    now = k.compare(">", a, b)
    before = k.compare("<=", k.shift(a, 1), k.shift(b, 1))
    return k.kleene_and(now, before)


def _crossunder(ctx, a, b):
    now = k.compare("<", a, b)
    before = k.compare(">=", k.shift(a, 1), k.shift(b, 1))
    return k.kleene_and(now, before)


def _macd_check(a: dict) -> str | None:
    if a["fast"] >= a["slow"]:
        return f"needs fast < slow, got fast={a['fast']}, slow={a['slow']}"
    return None


_MACD_PARAMS = (
    _x(),
    Param("fast", WINDOW, 12, 2, MAX_WINDOW),
    Param("slow", WINDOW, 26, 2, MAX_WINDOW),
    Param("signal", WINDOW, 9, 1, MAX_WINDOW),
)
_BB_PARAMS = (_x(), _n(20), Param("k", LITERAL, 2, 0, 10))


def _macd_lookback(a: dict) -> int:
    return (a["slow"] - 1) + (a["signal"] - 1)


# ------------------------------------------------------------------ declarations

_register(Function("sma", (_x(), _n()), NUMBER, "simple moving average (TA-Lib SMA)",
                   lambda c, x, n: k.sma(x, n), lambda a: a["n"] - 1, example="sma(close, 20)"))
_register(Function("ema", (_x(), _n()), NUMBER,
                   "exponential moving average (TA-Lib EMA: seeded with the SMA of the first n)",
                   lambda c, x, n: _ta1(c, _EMA, x, n), lambda a: a["n"] - 1, smoothed=True,
                   example="ema(close, 20)"))
_register(Function("rsi", (Param("x", SERIES, "close"), _n(14)), NUMBER,
                   "relative strength index (TA-Lib RSI, Wilder smoothing); rsi(14) = rsi(close, 14)",
                   lambda c, x, n: _ta1(c, _RSI, x, n), lambda a: a["n"], smoothed=True,
                   optional_leading_series=True, example="rsi(14)"))
_register(Function("macd", _MACD_PARAMS, NUMBER, "MACD line: EMA(fast) - EMA(slow) (TA-Lib MACD)",
                   lambda c, x, f, s, g: _macd(c, x, f, s, g, 0), _macd_lookback, smoothed=True,
                   check=_macd_check, example="macd(close)"))
_register(Function("macd_signal", _MACD_PARAMS, NUMBER, "MACD signal line: EMA(signal) of the MACD line",
                   lambda c, x, f, s, g: _macd(c, x, f, s, g, 1), _macd_lookback, smoothed=True,
                   check=_macd_check, example="macd_signal(close)"))
_register(Function("macd_hist", _MACD_PARAMS, NUMBER, "MACD histogram: MACD line - signal line",
                   lambda c, x, f, s, g: _macd(c, x, f, s, g, 2), _macd_lookback, smoothed=True,
                   check=_macd_check, example="macd_hist(close)"))
_register(Function("bb_upper", _BB_PARAMS, NUMBER,
                   "upper Bollinger band: SMA(n) + k * population std (TA-Lib BBANDS)",
                   lambda c, x, n, kk: _bbands(c, x, n, kk, 0), lambda a: a["n"] - 1,
                   example="bb_upper(close, 20, 2)"))
_register(Function("bb_middle", _BB_PARAMS, NUMBER, "middle Bollinger band: SMA(n)",
                   lambda c, x, n, kk: _bbands(c, x, n, kk, 1), lambda a: a["n"] - 1,
                   example="bb_middle(close, 20, 2)"))
_register(Function("bb_lower", _BB_PARAMS, NUMBER,
                   "lower Bollinger band: SMA(n) - k * population std (TA-Lib BBANDS)",
                   lambda c, x, n, kk: _bbands(c, x, n, kk, 2), lambda a: a["n"] - 1,
                   example="bb_lower(close, 20, 2)"))
_register(Function("atr", (_n(14, lo=1),), NUMBER, "average true range of high/low/close (TA-Lib ATR, Wilder)",
                   _atr, lambda a: a["n"], smoothed=True, example="atr(14)"))
_register(Function("highest", (_x(), _n(lo=1)), NUMBER, "highest value of the last n bars (this bar included)",
                   lambda c, x, n: k.rolling_max(x, n), lambda a: a["n"] - 1, example="highest(high, 20)"))
_register(Function("lowest", (_x(), _n(lo=1)), NUMBER, "lowest value of the last n bars (this bar included)",
                   lambda c, x, n: k.rolling_min(x, n), lambda a: a["n"] - 1, example="lowest(low, 20)"))
_register(Function("change", (_x(), _n(1, lo=1)), NUMBER, "x - x[n]",
                   lambda c, x, n: k.change(x, n), lambda a: a["n"], example="change(close, 5)"))
_register(Function("pct_change", (_x(), _n(1, lo=1)), NUMBER,
                   "percent change over n bars: (x - x[n]) / x[n] * 100",
                   lambda c, x, n: k.pct_change(x, n), lambda a: a["n"], example="pct_change(close, 20)"))
_register(Function("crossover", (Param("a", SERIES), Param("b", SERIES)), COND,
                   "a > b on this bar and a[1] <= b[1] on the previous bar",
                   _crossover, lambda a: 1, example="crossover(ema(close, 12), ema(close, 26))"))
_register(Function("crossunder", (Param("a", SERIES), Param("b", SERIES)), COND,
                   "a < b on this bar and a[1] >= b[1] on the previous bar",
                   _crossunder, lambda a: 1, example="crossunder(close, sma(close, 50))"))
_register(Function("bars_since", (Param("cond", CONDITION),), NUMBER,
                   "bars since cond was last true (0 when true now), NaN if never true in the loaded history",
                   lambda c, cond: k.bars_since(cond), example="bars_since(close > open)"))
_register(Function("any_of", (Param("cond", CONDITION), _n(lo=1)), COND,
                   "cond was true on at least one of the last n bars",
                   lambda c, cond, n: k.rolling_any(cond, n), lambda a: a["n"] - 1,
                   example="any_of(close > open, 5)"))
_register(Function("all_of", (Param("cond", CONDITION), _n(lo=1)), COND,
                   "cond was true on each of the last n bars",
                   lambda c, cond, n: k.rolling_all(cond, n), lambda a: a["n"] - 1,
                   example="all_of(close > open, 5)"))
_register(Function("abs", (_x(),), NUMBER, "absolute value", lambda c, x: k.absolute(x), example="abs(change(close))"))
_register(Function("min", (Param("a", SERIES), Param("b", SERIES)), NUMBER, "the smaller of a and b",
                   lambda c, a, b: k.minimum(a, b), example="min(open, close)"))
_register(Function("max", (Param("a", SERIES), Param("b", SERIES)), NUMBER, "the larger of a and b",
                   lambda c, a, b: k.maximum(a, b), example="max(open, close)"))
_register(Function("rank", (_x(),), NUMBER,
                   "rank of x across the symbols of the panel on this bar, 1 = highest, ties share the best rank",
                   k.cs_rank, category=CROSS_SECTION, example="rank(pct_change(close, 20))"))
_register(Function("percentile", (_x(),), NUMBER,
                   "percentile rank of x across the symbols on this bar, 0 = lowest, 100 = highest",
                   k.cs_percentile, category=CROSS_SECTION, example="percentile(volume)"))
_register(Function("zscore", (_x(),), NUMBER,
                   "(x - mean) / std of x across the symbols on this bar (population std)",
                   k.cs_zscore, category=CROSS_SECTION, example="zscore(pct_change(close, 5))"))
_register(Function("tf", (Param("interval", INTERVAL), Param("x", ANY)), "any",
                   "x on another (longer) interval: the value of its last completed bar before this bar",
                   None, category=TIMEFRAME, example='tf("1d", close)'))

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")


def describe_functions() -> str:
    """A one-line-per-function listing (for docs and error help)."""
    return "\n".join(f"{f.signature:<45} {f.summary}" for f in FUNCTIONS.values())

