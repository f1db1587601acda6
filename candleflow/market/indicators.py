"""The indicators candleflow stores: ``IndicatorSpec`` (one entry of ``config/indicators.yaml``)
names an indicator of ``indicator_registry.INDICATORS`` with its parameters, the candle columns it
reads and the names of its outputs; ``compute_indicators`` computes the specs of one interval.

Values follow TA-Lib's definitions (SMA plain mean; EMA seeded with the SMA of the first n values;
RSI and ATR with Wilder smoothing; MACD and BBANDS as TA-Lib computes them, BBANDS with the
population standard deviation), because that is what people check numbers against. VWAP is the
session VWAP (``candleflow.market.vwap``); the sessions come from the ``sessions`` frame given to
``compute_indicators`` (the one ``derive_bars`` takes), not from guesses about gaps between bars.

History: load ``history_bars(specs, interval)`` = max lookback + ``WARMUP_BARS`` bars before the
first bar whose value you keep (the warm-up rule of ``indicator_registry``), and pass that bar's
start as ``since``.
"""

import importlib.resources
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from candleflow.config_yaml import load_config_yaml
from candleflow.market.bars import symbol_starts
from candleflow.market.calendar import session_index
from candleflow.market.frames import CANDLE_DTYPES, OHLCV_COLUMNS
from candleflow.market.indicator_registry import INDICATORS, WARMUP_BARS
from candleflow.market.intervals import DAILY, check_interval


def _checked_param(function: str, key: str, value: object) -> int | float:
    """``value`` of the parameter ``key``, of the type of its default (which is the expected one)."""
    known = INDICATORS[function].parameters
    if key not in known:
        raise ValueError(
            f"unknown parameter {key!r} for {function}; "
            f"known: {', '.join(known) if known else 'none'}"
        )
    if isinstance(known[key], float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{function} parameter {key} must be a number, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{function} parameter {key} must be a non-negative integer, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator: a function, its parameters, which candle columns it reads, what it writes.

    ``function`` is a name of ``INDICATORS``. ``inputs`` are passed to it in order (its declared
    order: ATR takes high, low, close; VWAP takes high, low, close, volume). ``outputs`` name its
    outputs in their declared order (MACD: macd, signal, hist; BBANDS: upper, middle, lower).
    Invalid specs raise ValueError.
    """

    name: str
    function: str
    params: Mapping[str, int | float] = field(hash=False)  # frozen into a read-only mapping
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    intervals: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            self._check_and_freeze()
        except ValueError as error:
            raise ValueError(f"indicator {self.name!r}: {error}") from None

    def _check_and_freeze(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        if self.function not in INDICATORS:
            raise ValueError(f"unknown function {self.function!r}; known: {', '.join(INDICATORS)}")
        indicator = INDICATORS[self.function]
        if not isinstance(self.params, Mapping):
            raise ValueError(f"params must be a mapping, got {self.params!r}")
        params = {k: _checked_param(self.function, k, v) for k, v in self.params.items()}
        object.__setattr__(self, "params", types.MappingProxyType(params))
        for name in ("inputs", "outputs", "intervals"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ValueError(f"{name} must be a list of strings, got {value!r}")
            value = tuple(value)
            if not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{name} must be a list of strings, got {list(value)!r}")
            object.__setattr__(self, name, value)
        n_inputs = len(indicator.inputs)
        if len(self.inputs) != n_inputs or not set(self.inputs) <= set(OHLCV_COLUMNS):
            raise ValueError(
                f"{self.function} reads {n_inputs} of the candle columns "
                f"{', '.join(OHLCV_COLUMNS)}; got inputs {list(self.inputs)}"
            )
        n_outputs = len(indicator.outputs)
        if len(self.outputs) != n_outputs or len(set(self.outputs)) != n_outputs:
            raise ValueError(f"{self.function} has {n_outputs} outputs; got {list(self.outputs)}")
        if not self.intervals:
            raise ValueError("intervals must not be empty")
        for interval in self.intervals:
            check_interval(interval)
        if indicator.per_session and DAILY in self.intervals:
            raise ValueError(f"{self.function} restarts every session, so it is meaningless on daily bars")
        if lookback(self) < 0:
            raise ValueError(
                f"TA-Lib rejects the parameters {dict(self.params)} of {self.function}"
            )


def lookback(spec: IndicatorSpec) -> int:
    """Bars the indicator consumes before the first value (the first lookback outputs are NaN)."""
    return INDICATORS[spec.function].lookback(spec.params)


def history_bars(specs: Iterable[IndicatorSpec], interval: str) -> int:
    """Bars of history to load for ``interval``: max lookback + WARMUP_BARS (the warm-up rule)."""
    return max((lookback(s) for s in specs if interval in s.intervals), default=0) + WARMUP_BARS


def _check_unique_outputs(specs: Sequence[IndicatorSpec]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        for interval in spec.intervals:
            for output in spec.outputs:
                other = seen.setdefault((interval, output), spec.name)
                if other != spec.name:
                    raise ValueError(
                        f"indicators {other!r} and {spec.name!r} both write {output!r} "
                        f"on {interval} bars"
                    )


def load_indicator_specs(path: str | Path) -> tuple[IndicatorSpec, ...]:
    """Read indicator specs from a YAML list of mappings with IndicatorSpec's field names.

    ``params`` may be left out when the function takes none (VWAP) or all defaults. YAML anchors
    and aliases are refused.
    """
    with open(path, encoding="utf-8") as stream:
        entries = load_config_yaml(stream, str(path))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of indicator mappings")
    allowed = {f.name for f in fields(IndicatorSpec)}
    specs = []
    for position, entry in enumerate(entries, start=1):
        where = f"{path}: indicator {position}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {entry!r}")
        unknown = set(entry) - allowed
        missing = allowed - {"params"} - set(entry)
        if unknown or missing:
            raise ValueError(
                f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}; "
                f"fields are {', '.join(sorted(allowed))}"
            )
        try:
            specs.append(IndicatorSpec(**{"params": {}, **entry}))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    try:
        _check_unique_outputs(specs)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return tuple(specs)


DEFAULT_INDICATORS_PATH = importlib.resources.files("candleflow") / "config" / "indicators.yaml"
DEFAULT_INDICATORS: tuple[IndicatorSpec, ...] = load_indicator_specs(DEFAULT_INDICATORS_PATH)


def _session_starts(function: str, bar_start: np.ndarray, sessions: pd.DataFrame | None) -> np.ndarray:
    """Flags of the bars that begin a session."""
    if sessions is None:
        raise ValueError(f"{function} needs the sessions frame (ExchangeSessions.sessions) to restart")
    k = session_index(bar_start, sessions, hours="bars")  # a daily bar is inside its session's bar hours
    if (k < 0).any():
        raise ValueError(f"bars outside the given sessions; {function} cannot tell their session")
    return np.concatenate(([True], k[1:] != k[:-1]))


def _outputs(result, count: int) -> tuple[np.ndarray, ...]:
    return tuple(result) if count > 1 else (result,)


def _code_dtype(n_categories: int) -> type:
    """The code dtype pandas would pick; giving it up front saves pandas a copy of the codes."""
    return np.int8 if n_categories < 127 else np.int16 if n_categories < 32767 else np.int32


def _categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    categories = pd.Index(categories, dtype=CANDLE_DTYPES["symbol"])
    return pd.Categorical.from_codes(codes, categories=categories)


def _long_frame(
    interval: str,
    symbols: Sequence[str],
    symbol_codes: np.ndarray,
    bar_start: np.ndarray,
    names: Sequence[str],
    name_codes: np.ndarray,
    value: np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": _categorical(symbol_codes, symbols),
            "interval": _categorical(np.zeros(len(value), dtype=np.int8), [interval]),
            "bar_start": bar_start,
            "name": _categorical(name_codes, names),
            "value": value,
        },
        copy=False,
    )


def compute_indicators(
    bars: pd.DataFrame,
    interval: str,
    specs: Sequence[IndicatorSpec],
    since: int | None = None,
    sessions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Indicator values of ``bars`` (a candle frame of one ``interval``), in long format.

    Uses the specs that list ``interval``. Returns columns symbol, interval, bar_start, name, value:
    one row per output and bar with bar_start >= ``since`` (all bars if None) and a value (the
    first lookback bars of each symbol have none), grouped by name, then sorted by symbol and
    bar_start. symbol, interval and name are categoricals: 2,500 symbols x 1,000 daily bars give
    29 million rows, which as string columns take seconds to build.
    ``sessions`` (a frame from ``ExchangeSessions.sessions`` covering the bars) tells a per-session
    indicator (VWAP) where sessions start; it is required only when one applies.
    """
    check_interval(interval)
    specs = [s for s in specs if interval in s.intervals]
    _check_unique_outputs(specs)
    if bars.empty or not specs:
        none = np.empty(0, dtype=np.int8)
        outputs = [o for s in specs for o in s.outputs]
        return _long_frame(interval, [], none, np.empty(0, np.int64), outputs, none, np.empty(0))
    symbols = bars["symbol"].array
    bar_start = bars["bar_start"].to_numpy(np.int64)
    first = symbol_starts(symbols, bar_start)
    ends = np.append(first[1:], len(bars))
    columns = {
        c: np.ascontiguousarray(bars[c].to_numpy(np.float64))
        for c in {c for s in specs for c in s.inputs}
    }
    values = {output: np.empty(len(bars)) for s in specs for output in s.outputs}
    calls = []
    for spec in specs:
        indicator = INDICATORS[spec.function]
        outputs = [values[o] for o in spec.outputs]
        if indicator.per_session:
            restart = _session_starts(spec.function, bar_start, sessions)
            restart[first] = True
            results = indicator.compute(*(columns[c] for c in spec.inputs), restart, **spec.params)
            for output, result in zip(outputs, _outputs(results, len(outputs))):
                output[:] = result
        else:
            calls.append((indicator.compute, spec.inputs, dict(spec.params), outputs))
    for lo, hi in zip(first, ends):
        window = {c: a[lo:hi] for c, a in columns.items()}
        for compute, inputs, params, outputs in calls:
            results = compute(*[window[c] for c in inputs], **params)
            for output, result in zip(outputs, _outputs(results, len(outputs))):
                output[lo:hi] = result

    wanted = np.ones(len(bars), dtype=bool) if since is None else bar_start >= since
    kept = [wanted & ~np.isnan(v) for v in values.values()]
    symbol_codes = np.repeat(np.arange(len(first), dtype=_code_dtype(len(first))), ends - first)
    name_dtype = _code_dtype(len(values))

    def stacked(pieces: Iterable[np.ndarray]) -> np.ndarray:
        return np.concatenate(list(pieces))

    return _long_frame(
        interval,
        symbols.take(first),
        stacked(symbol_codes[m] for m in kept),
        stacked(bar_start[m] for m in kept),
        list(values),
        stacked(np.full(np.count_nonzero(m), k, name_dtype) for k, m in enumerate(kept)),
        stacked(v[m] for v, m in zip(values.values(), kept)),
    )
