"""The function registry: every function of the language is declared once, here.

A declaration gives the name, the parameters (name, kind, default, allowed range), the result kind,
the lookback (bars of history before the current bar that one value needs, as TA-Lib counts it),
whether the function is *smoothed* (recursive, so it needs a warm-up), where it runs (per row on
2-D blocks, across symbols, or on another interval) and the implementation. The parser binds and
checks arguments from these declarations; the history inference reads the lookbacks; the evaluator
calls the implementations. Nothing else lists functions: the indicator functions (sma, ema, rsi,
macd*, bb_*, atr) are declared with their indicators in ``candleflow.market.indicator_registry``
and registered here from it (``indicator_functions``).

Implementations take the evaluation context and the bound arguments in declaration order: series
and condition arguments arrive as 2-D float64 arrays (symbols x bars), literal arguments as Python
numbers / strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..market.indicator_registry import INDICATORS, SERIES, WINDOW, Indicator
from ..market.indicator_registry import NUMBER as LITERAL
from . import kernels as k
from .limits import MAX_WINDOW
from .nodes import COND, NUMBER

# parameter kinds; SERIES (a numeric expression, a constant is broadcast to a series), WINDOW (a
# whole-number literal, in bars) and LITERAL (a number literal) are the indicator_registry's kinds
CONDITION = "condition"  # a condition expression
ANY = "any"  # a numeric or condition expression
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
    #: A cross section whose values are ranks (1 = highest, whole numbers): ``f(x) <= K`` (and
    #: <, >, >=, either side) is evaluated as a top-K test by partition instead of a full ranking.
    top_k: bool = False
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


# ------------------------------------------------------------------ indicator functions

#: The function each indicator's formula functions run on one symbol's run of bars (through
#: ``ctx.talib``), by indicator name: the registry's (TA-Lib's). A table, so that a test can make
#: one fail.
ROW_KERNELS: dict[str, Callable] = {name: i.compute for name, i in INDICATORS.items() if i.functions}
#: Indicators computed on the whole 2-D block at once instead (same values as TA-Lib to ~1e-12):
#: SMA as cumulative sums.
BLOCK_KERNELS: dict[str, Callable] = {"SMA": lambda x, n: k.sma(x, n)}


def _indicator_impl(indicator: Indicator, output: int) -> Callable:
    """Output ``output`` of ``indicator``, from the bound arguments of one of its functions."""
    names = [a.name for a in indicator.arguments]
    series = [a.kind == SERIES for a in indicator.arguments]
    fields = indicator.inputs[sum(series):]  # the inputs no argument gives
    n_out = len(indicator.outputs)

    def impl(ctx, *args):
        bound = dict(zip(names, args))
        inputs = [*(a for a, is_series in zip(args, series) if is_series), *map(ctx.field, fields)]
        params = tuple(indicator.parameters_from(bound).values())
        block = BLOCK_KERNELS.get(indicator.name)
        if block is not None:
            return block(*inputs, *params)

        def run() -> list:
            return ctx.talib(ROW_KERNELS[indicator.name], inputs, params, n_out)

        if n_out == 1:
            return run()[0]
        if len(inputs) > 1:  # memo_for keys on one array
            return run()[output]
        # the outputs of one computation, shared by the functions of the same arguments
        return ctx.memo_for(inputs[0], (indicator.name, *params), run)[output]

    return impl


def indicator_functions(indicator: Indicator) -> list[Function]:
    """The language's functions of ``indicator`` (``indicator_registry``), one per output it
    exposes, with its arguments as parameters."""
    params = tuple(
        Param(a.name, a.kind, REQUIRED if a.default is None else a.default, a.min,
              MAX_WINDOW if a.max is None and a.kind == WINDOW else a.max)
        for a in indicator.arguments
    )
    return [
        Function(f.name, params, NUMBER, f.summary, _indicator_impl(indicator, f.output),
                 lambda a: indicator.lookback(indicator.parameters_from(a)), smoothed=indicator.smoothed,
                 optional_leading_series=bool(params) and params[0].kind == SERIES and not params[0].required,
                 check=indicator.check, example=f.example)
        for f in indicator.functions
    ]


# ------------------------------------------------------------------ other implementations


def _crossover(ctx, a, b):
    now = k.compare(">", a, b)
    before = k.compare("<=", k.shift(a, 1), k.shift(b, 1))
    return k.kleene_and(now, before)


def _crossunder(ctx, a, b):
    now = k.compare("<", a, b)
    before = k.compare(">=", k.shift(a, 1), k.shift(b, 1))
    return k.kleene_and(now, before)


# ------------------------------------------------------------------ declarations

for _indicator in INDICATORS.values():
    for _function in indicator_functions(_indicator):
        _register(_function)
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
                   k.cs_rank, category=CROSS_SECTION, top_k=True, example="rank(pct_change(close, 20))"))
_register(Function("percentile", (_x(),), NUMBER,
                   "percentile rank of x across the symbols on this bar, 0 = lowest, 100 = highest: "
                   "100 * (r - 1) / (N - 1), r the ascending rank with ties averaged, N the number of "
                   "values; NaN if N < 2",
                   k.cs_percentile, category=CROSS_SECTION, example="percentile(volume)"))
_register(Function("zscore", (_x(),), NUMBER,
                   "(x - mean) / std of x across the symbols on this bar (population std); NaN if the std "
                   "is 0; computed on scaled values, so zscore(k * x) = zscore(x) for any k > 0",
                   k.cs_zscore, category=CROSS_SECTION, example="zscore(pct_change(close, 5))"))
_register(Function("tf", (Param("interval", INTERVAL), Param("x", ANY)), "any",
                   "x on another (longer) interval: the value of its last completed bar before this bar",
                   None, category=TIMEFRAME, example='tf("1d", close)'))

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")

