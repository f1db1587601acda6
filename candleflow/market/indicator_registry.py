"""The indicators candleflow knows, each declared once, in ``INDICATORS``.

An ``Indicator`` declares what ``talib.abstract`` declares of a TA-Lib function: the candle
columns it reads (``inputs``, in argument order), its parameters with their defaults, its outputs
in order, and its lookback (the bars it consumes before its first value). The TA-Lib indicators
take all four from TA-Lib itself (``talib_indicator``). On top of that an indicator says whether it
is *smoothed* (recursive, so that it needs the warm-up below), whether it restarts every session
(VWAP), and which functions of the formula language give its outputs, with their arguments
(``sma(x, n)``; ``macd``, ``macd_signal`` and ``macd_hist`` for MACD's three outputs).

Two readers: ``candleflow.market.indicators`` (the indicator specs of ``config/indicators.yaml``:
the function a spec names, its parameters, inputs and outputs, and computing it) and
``candleflow.formula.functions`` (the language's indicator functions). Adding an indicator is one
entry here, plus one in ``config/indicators.yaml`` to store it by default; then regenerate the
reference, docs/formula-functions.md (``python -m candleflow.formula.reference``; see
docs/extending.md).

Warm-up rule. Smoothed indicators (EMA, RSI, MACD, ATR) depend on where the history starts: the
seed's influence decays geometrically but never vanishes. Computed on at least lookback +
``WARMUP_BARS`` (250) bars, the value at the last bar agrees with a computation over 5,000 bars to
a few parts in a million (measured on random walks with 2% daily moves: RSI14 within 2e-7 points,
EMA50 within 3e-6 relative; the field notes give 1.6e-6 and 1.4e-5 at 200 bars). The stored
indicators always load that much history (``indicators.history_bars``); formulas add it when they
use a smoothed function.
"""

import functools
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import talib
import talib.abstract

from candleflow.market.vwap import session_vwap

WARMUP_BARS = 250

#: Kinds of formula arguments, which the formula language's parameters share: a numeric expression
#: (a constant is broadcast to a series), a whole-number literal in bars, a number literal.
SERIES, WINDOW, NUMBER = "series", "window", "number"


@dataclass(frozen=True)
class Argument:
    """An argument of an indicator's formula functions.

    A SERIES argument takes the place of the indicator's next input (``default``: a candle column,
    or None when required); inputs left without one are read from the candle columns of their
    names (``atr(n)`` reads high, low, close). A WINDOW (whole number of bars) or NUMBER argument
    gives its value to the parameters it ``sets`` (BBANDS' k sets nbdevup and nbdevdn), between
    ``min`` and ``max`` (None for a window: the language's longest window).
    """

    name: str
    kind: str
    default: int | float | str | None = None
    sets: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class FormulaFunction:
    """A function of the formula language giving output number ``output`` of its indicator."""

    name: str
    output: int
    summary: str
    example: str


@dataclass(frozen=True)
class Indicator:
    """One indicator function (see the module docstring).

    ``compute(*inputs, **parameters)`` takes one symbol's 1-D float64 arrays and returns one array
    per output (an array when there is one output); a ``per_session`` indicator also takes the
    flags of the bars that begin a session, after the inputs. ``lookback(parameters)`` is -1 for
    parameters the function rejects. ``check`` validates formula arguments (by name), returning a
    message or None.
    """

    name: str
    inputs: tuple[str, ...]
    parameters: Mapping[str, int | float]
    outputs: tuple[str, ...]
    compute: Callable
    lookback: Callable[[Mapping[str, int | float]], int]
    smoothed: bool = False
    per_session: bool = False
    arguments: tuple[Argument, ...] = ()
    functions: tuple[FormulaFunction, ...] = ()
    check: Callable[[Mapping[str, object]], str | None] | None = None

    def parameters_from(self, arguments: Mapping[str, object]) -> dict[str, int | float]:
        """Every parameter, in order, with the values of the formula ``arguments`` that set it,
        else its default; of the default's type."""
        values = dict(self.parameters)
        for argument in self.arguments:
            for parameter in argument.sets:
                values[parameter] = arguments[argument.name]
        return {k: type(self.parameters[k])(v) for k, v in values.items()}


@functools.cache
def _talib_lookback(name: str, parameters: tuple[tuple[str, int | float], ...]) -> int:
    return talib.abstract.Function(name, **dict(parameters)).lookback


def talib_indicator(name: str, **declared) -> Indicator:
    """The TA-Lib function ``name`` as TA-Lib declares it (``talib.abstract.Function(name)``), plus
    ``declared`` (smoothed, arguments, functions, check)."""
    info = talib.abstract.Function(name)
    # input_names maps TA-Lib's argument names to a column or a list of them
    inputs = [c for names in info.input_names.values() for c in ([names] if isinstance(names, str) else names)]
    function = getattr(talib, name)
    return Indicator(
        name=name,
        inputs=tuple(inputs),
        parameters=types.MappingProxyType(dict(info.parameters)),
        outputs=tuple(info.output_names),
        # without talib's pandas/polars dispatch wrapper: same results on float64 arrays, a few
        # microseconds less per call, which adds up over thousands of symbols
        compute=getattr(function, "__wrapped__", function),
        lookback=lambda parameters: _talib_lookback(name, tuple(parameters.items())),
        **declared,
    )


def _x(default: str | None = None) -> Argument:
    return Argument("x", SERIES, default)


def _n(default: int | None = None, lo: int = 2) -> Argument:
    return Argument("n", WINDOW, default, ("timeperiod",), lo)


def _macd_check(a: Mapping[str, object]) -> str | None:
    if a["fast"] >= a["slow"]:
        return f"needs fast < slow, got fast={a['fast']}, slow={a['slow']}"
    return None


_MACD_ARGUMENTS = (
    _x(),
    Argument("fast", WINDOW, 12, ("fastperiod",), 2),
    Argument("slow", WINDOW, 26, ("slowperiod",), 2),
    Argument("signal", WINDOW, 9, ("signalperiod",), 1),
)
_BBANDS_ARGUMENTS = (_x(), _n(20), Argument("k", NUMBER, 2, ("nbdevup", "nbdevdn"), 0, 10))

#: Every indicator an IndicatorSpec may name, and the formula language's indicator functions,
#: in the order the language lists its functions.
INDICATORS: dict[str, Indicator] = {
    i.name: i
    for i in (
        talib_indicator("SMA", arguments=(_x(), _n()), functions=(
            FormulaFunction("sma", 0, "simple moving average (TA-Lib SMA)", "sma(close, 20)"),
        )),
        talib_indicator("EMA", smoothed=True, arguments=(_x(), _n()), functions=(
            FormulaFunction("ema", 0, "exponential moving average (TA-Lib EMA: seeded with the SMA of the "
                            "first n)", "ema(close, 20)"),
        )),
        talib_indicator("RSI", smoothed=True, arguments=(_x("close"), _n(14)), functions=(
            FormulaFunction("rsi", 0, "relative strength index (TA-Lib RSI, Wilder smoothing); rsi(14) = "
                            "rsi(close, 14)", "rsi(14)"),
        )),
        talib_indicator("MACD", smoothed=True, arguments=_MACD_ARGUMENTS, check=_macd_check, functions=(
            FormulaFunction("macd", 0, "MACD line: EMA(fast) - EMA(slow) (TA-Lib MACD); fast < slow", "macd(close)"),
            FormulaFunction("macd_signal", 1, "MACD signal line: EMA(signal) of the MACD line",
                            "macd_signal(close)"),
            FormulaFunction("macd_hist", 2, "MACD histogram: MACD line - signal line", "macd_hist(close)"),
        )),
        talib_indicator("BBANDS", arguments=_BBANDS_ARGUMENTS, functions=(
            FormulaFunction("bb_upper", 0, "upper Bollinger band: SMA(n) + k * population std (TA-Lib "
                            "BBANDS)", "bb_upper(close, 20, 2)"),
            FormulaFunction("bb_middle", 1, "middle Bollinger band: SMA(n)", "bb_middle(close, 20, 2)"),
            FormulaFunction("bb_lower", 2, "lower Bollinger band: SMA(n) - k * population std (TA-Lib "
                            "BBANDS)", "bb_lower(close, 20, 2)"),
        )),
        talib_indicator("ATR", smoothed=True, arguments=(_n(14, lo=1),), functions=(
            FormulaFunction("atr", 0, "average true range of high/low/close (TA-Lib ATR, Wilder)", "atr(14)"),
        )),
        # The language's vwap is a series (BarPanel.vwap, the same session_vwap), not a function.
        Indicator("VWAP", inputs=("high", "low", "close", "volume"),
                  parameters=types.MappingProxyType({}), outputs=("vwap",), compute=session_vwap,
                  lookback=lambda parameters: 0, per_session=True),
    )
}
