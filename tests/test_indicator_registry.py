"""The indicator registry: every entry is a stored indicator equal to TA-Lib and, through its
formula functions, part of the language; adding one is one entry; the reference is generated."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib.abstract

import candleflow
from candleflow.formula import BarPanel, compile_expression, evaluate_expression
from candleflow.formula.functions import FIELDS, FUNCTIONS
from candleflow.formula.reference import markdown
from candleflow.market.frames import OHLCV_COLUMNS, as_candle_frame
from candleflow.market.indicator_registry import INDICATORS, NUMBER, SERIES, WARMUP_BARS, WINDOW
from candleflow.market.indicators import IndicatorSpec, compute_indicators, history_bars, lookback

DAY = 86400
N = 400
REPO = Path(candleflow.__file__).parent.parent
COMPUTED_PER_SYMBOL = [i for i in INDICATORS.values() if not i.per_session]
FORMULA_FUNCTIONS = [(i, f) for i in INDICATORS.values() for f in i.functions]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, N)))
    open_ = close * np.exp(rng.normal(0, 0.005, N))
    frame = pd.DataFrame({
        "symbol": "X", "bar_start": np.arange(N, dtype=np.int64) * DAY, "open": open_,
        "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, N)),
        "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, N)),
        "close": close, "volume": rng.integers(100, 10_000, N).astype(float), "minutes": 390,
        "complete": True,
    })
    return as_candle_frame(frame)


def talib_outputs(name: str, bars: pd.DataFrame, **parameters) -> list[np.ndarray]:
    """TA-Lib's outputs of ``name`` through its abstract interface (by input name, not by the
    registry's compute)."""
    result = talib.abstract.Function(name, **parameters)({c: bars[c].to_numpy(np.float64) for c in OHLCV_COLUMNS})
    return result if isinstance(result, list) else [result]


@pytest.mark.parametrize("indicator", COMPUTED_PER_SYMBOL, ids=lambda i: i.name)
def test_a_spec_of_every_indicator_equals_talib(indicator, bars):
    outputs = tuple(f"out_{o}" for o in indicator.outputs)
    spec = IndicatorSpec("spec", indicator.name, {}, indicator.inputs, outputs, ("1d",))
    result = compute_indicators(bars, "1d", [spec])
    for name, expected in zip(outputs, talib_outputs(indicator.name, bars)):
        got = result.loc[result["name"] == name, "value"].to_numpy()
        np.testing.assert_allclose(got, expected[~np.isnan(expected)], rtol=1e-12, err_msg=name)
    assert lookback(spec) == talib.abstract.Function(indicator.name).lookback
    assert history_bars([spec], "1d") == lookback(spec) + WARMUP_BARS


def _call(indicator, function) -> str:
    """A call of ``function`` with every argument spelled out: series close, the default or 7."""
    values = [("close" if a.kind == SERIES else 7) if a.default is None else a.default for a in indicator.arguments]
    return f"{function.name}({', '.join(str(v) for v in values)})"


@pytest.mark.parametrize("indicator,function", FORMULA_FUNCTIONS, ids=[f.name for _, f in FORMULA_FUNCTIONS])
def test_every_formula_function_of_the_registry_equals_talib(indicator, function, bars):
    text = _call(indicator, function)
    panel = BarPanel.from_candles(bars, "1d")
    arguments = {a.name: 7 if a.default is None else a.default for a in indicator.arguments if a.kind != SERIES}
    parameters = indicator.parameters_from(arguments)
    expected = talib_outputs(indicator.name, bars, **parameters)[function.output]
    np.testing.assert_allclose(evaluate_expression(text, panel)[0], expected, rtol=1e-9, equal_nan=True,
                               err_msg=text)
    declared = FUNCTIONS[function.name]
    assert declared.smoothed == indicator.smoothed
    minimum = talib.abstract.Function(indicator.name, **parameters).lookback + 1
    assert compile_expression(text).minimum_bars("1d") == {"1d": minimum}


def test_every_indicator_is_in_the_formula_language():
    """Through its functions; an indicator that restarts every session is a series (vwap)."""
    for indicator in INDICATORS.values():
        assert indicator.functions or (indicator.per_session and indicator.outputs == ("vwap",) and "vwap" in FIELDS)
        assert all(a.kind in (SERIES, WINDOW, NUMBER) for a in indicator.arguments)


def test_the_function_reference_is_current():
    path = REPO / "docs" / "formula-functions.md"
    assert path.read_text() == markdown(), "run: python -m candleflow.formula.reference > docs/formula-functions.md"


WMA_ENTRY = '''\
        talib_indicator("WMA", arguments=(_x(), _n()), functions=(
            FormulaFunction("wma", 0, "weighted moving average (TA-Lib WMA)", "wma(close, 20)"),
        )),
'''
ANCHOR = "        # The language's vwap is a series"

WMA_CHECK = '''\
import pathlib
import numpy as np, pandas as pd, talib
import candleflow
assert pathlib.Path(candleflow.__file__).is_relative_to(pathlib.Path.cwd())  # the edited copy
from candleflow.formula import BarPanel, evaluate_expression
from candleflow.market.frames import as_candle_frame
from candleflow.market.indicators import compute_indicators, load_indicator_specs

close = 50 + np.cumsum(np.random.default_rng(1).normal(0, 1, 60))
bars = as_candle_frame(pd.DataFrame({"symbol": "X", "bar_start": np.arange(60) * 86400, "open": close,
    "high": close + 1, "low": close - 1, "close": close, "volume": 1000.0, "minutes": 390, "complete": True}))
specs = load_indicator_specs("wma.yaml")
stored = compute_indicators(bars, "1d", specs)["value"].to_numpy()
expected = talib.WMA(close, timeperiod=10)
np.testing.assert_allclose(stored, expected[9:], rtol=1e-12)
formula = evaluate_expression("wma(close, 10)", BarPanel.from_candles(bars, "1d"))[0]
np.testing.assert_allclose(formula, expected, rtol=1e-12, equal_nan=True)
print("WMA ok")
'''


def test_adding_an_indicator_is_one_registry_entry(tmp_path):
    """The worked example of docs/extending.md, in a copy of the package: one entry in the
    registry gives a stored indicator (a YAML spec naming WMA) and the formula function wma."""
    shutil.copytree(REPO / "candleflow", tmp_path / "candleflow", ignore=shutil.ignore_patterns("__pycache__"))
    registry = tmp_path / "candleflow" / "market" / "indicator_registry.py"
    source = registry.read_text()
    assert source.count(ANCHOR) == 1
    registry.write_text(source.replace(ANCHOR, WMA_ENTRY + ANCHOR))
    (tmp_path / "wma.yaml").write_text(textwrap.dedent("""\
        - name: wma_10
          function: WMA
          params: {timeperiod: 10}
          inputs: [close]
          outputs: [wma_10]
          intervals: [1d]
        """))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", WMA_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "WMA ok\n"
