"""Indicators: equal to TA-Lib called directly, to hand-worked examples, and the warm-up rule."""

import dataclasses
import datetime as dt
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

import candleflow
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import as_candle_frame
from candleflow.market.indicators import (
    DEFAULT_INDICATORS,
    WARMUP_BARS,
    IndicatorSpec,
    compute_indicators,
    history_bars,
    load_indicator_specs,
    lookback,
)

XNYS = ExchangeSessions()
NEW_YORK = "America/New_York"
DAY = 86400


def candles(closes: dict[str, np.ndarray], bar_starts: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """A candle frame around the given closes: highs above, lows below, random volume."""
    rng = np.random.default_rng(seed)
    parts = []
    for symbol, close in closes.items():
        n = len(close)
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "bar_start": bar_starts[:n],
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n)),
                    "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n)),
                    "close": close,
                    "volume": rng.integers(100, 10_000, n).astype(float),
                    "minutes": 390,
                    "complete": True,
                }
            )
        )
    return as_candle_frame(pd.concat(parts, ignore_index=True))


def random_walk(n: int, seed: int) -> np.ndarray:
    return 50 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, n)))


def one(name: str, function: str, params: dict, inputs=("close",), outputs=None) -> IndicatorSpec:
    return IndicatorSpec(name, function, params, inputs, outputs or (name,), ("1d",))


def series(result: pd.DataFrame, name: str, symbol: str = "X") -> pd.Series:
    rows = result[(result["name"] == name) & (result["symbol"] == symbol)]
    return pd.Series(rows["value"].to_numpy(), index=rows["bar_start"].to_numpy())


def test_default_indicators_are_declared_as_specified():
    by_interval = {
        interval: {s.name for s in DEFAULT_INDICATORS if interval in s.intervals}
        for interval in ("1d", "5m", "1h", "15m")
    }
    assert by_interval["1d"] == {
        "sma_20", "sma_50", "sma_200", "ema_20", "rsi_14", "macd_12_26_9", "bb_20_2", "atr_14"
    }
    assert by_interval["5m"] == by_interval["1h"] == {"sma_20", "ema_20", "rsi_14", "vwap"}
    assert by_interval["15m"] == set()
    spec = {s.name: s for s in DEFAULT_INDICATORS}
    assert spec["macd_12_26_9"].outputs == (
        "macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist"
    )
    assert spec["bb_20_2"].outputs == ("bb_20_2_upper", "bb_20_2_middle", "bb_20_2_lower")
    assert spec["atr_14"].inputs == ("high", "low", "close")


def test_defaults_come_from_the_shipped_yaml():
    path = Path(candleflow.__file__).parent / "config" / "indicators.yaml"
    assert load_indicator_specs(path) == DEFAULT_INDICATORS


def test_lookbacks_and_history_bars():
    spec = {s.name: s for s in DEFAULT_INDICATORS}
    # TA-Lib lookbacks: SMA/EMA n-1, RSI/ATR n, MACD(12,26,9) 33, BBANDS(20) 19
    expected = {"sma_20": 19, "sma_50": 49, "sma_200": 199, "ema_20": 19, "rsi_14": 14,
                "macd_12_26_9": 33, "bb_20_2": 19, "atr_14": 14, "vwap": 0}
    assert {name: lookback(s) for name, s in spec.items()} == expected
    assert WARMUP_BARS == 250
    assert history_bars(DEFAULT_INDICATORS, "1d") == 199 + 250
    assert history_bars(DEFAULT_INDICATORS, "5m") == 19 + 250
    assert history_bars(DEFAULT_INDICATORS, "15m") == 250


def test_every_daily_default_equals_talib_called_directly():
    n = 420
    closes = {s: random_walk(n, seed) for seed, s in enumerate(["X", "Y", "Z"])}
    bars = candles(closes, np.arange(n, dtype=np.int64) * DAY)
    result = compute_indicators(bars, "1d", DEFAULT_INDICATORS)
    assert not result["value"].isna().any()
    for symbol in closes:
        mine = bars[bars["symbol"] == symbol]
        h, l, c = (np.ascontiguousarray(mine[k].to_numpy()) for k in ("high", "low", "close"))
        macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
        upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
        expected = {
            "sma_20": talib.SMA(c, timeperiod=20),
            "sma_50": talib.SMA(c, timeperiod=50),
            "sma_200": talib.SMA(c, timeperiod=200),
            "ema_20": talib.EMA(c, timeperiod=20),
            "rsi_14": talib.RSI(c, timeperiod=14),
            "macd_12_26_9": macd,
            "macd_12_26_9_signal": signal,
            "macd_12_26_9_hist": hist,
            "bb_20_2_upper": upper,
            "bb_20_2_middle": middle,
            "bb_20_2_lower": lower,
            "atr_14": talib.ATR(h, l, c, timeperiod=14),
        }
        assert set(result["name"]) == set(expected)
        for name, values in expected.items():
            got = series(result, name, symbol)
            defined = ~np.isnan(values)
            np.testing.assert_array_equal(got.index, mine["bar_start"].to_numpy()[defined])
            np.testing.assert_allclose(got.to_numpy(), values[defined], rtol=1e-12, err_msg=name)


def test_result_frame_shape_and_since():
    bars = candles({"X": random_walk(300, 1), "Y": random_walk(300, 2)}, np.arange(300) * DAY)
    result = compute_indicators(bars, "1d", DEFAULT_INDICATORS, since=290 * DAY)
    assert list(result.columns) == ["symbol", "interval", "bar_start", "name", "value"]
    assert result["bar_start"].dtype == np.int64 and result["value"].dtype == np.float64
    assert (result["interval"] == "1d").all()
    assert result["bar_start"].min() == 290 * DAY
    assert len(result) == 2 * 10 * 12  # 2 symbols x 10 bars x 12 outputs
    assert not result.duplicated(["symbol", "bar_start", "name"]).any()
    assert compute_indicators(bars, "15m", DEFAULT_INDICATORS).empty  # nothing declared for 15m


def test_sma_and_ema_by_hand():
    specs = [one("sma_3", "SMA", {"timeperiod": 3}), one("ema_3", "EMA", {"timeperiod": 3})]
    ramp = candles({"X": np.arange(1.0, 7.0)}, np.arange(6) * DAY)
    result = compute_indicators(ramp, "1d", specs)
    assert series(result, "sma_3").tolist() == [2.0, 3.0, 4.0, 5.0]
    assert series(result, "sma_3").index.tolist() == [2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY]
    # EMA(3): seed = SMA of the first three = (2 + 4 + 6) / 3 = 4, then k = 2 / (3 + 1) = 0.5:
    # 0.5 * 8 + 0.5 * 4 = 6; 0.5 * 20 + 0.5 * 6 = 13; 0.5 * 10 + 0.5 * 13 = 11.5
    bumpy = candles({"X": np.array([2.0, 4.0, 6.0, 8.0, 20.0, 10.0])}, np.arange(6) * DAY)
    assert series(compute_indicators(bumpy, "1d", specs), "ema_3").tolist() == [4, 6, 13, 11.5]


def test_rsi_by_hand_with_wilder_smoothing():
    closes = [10, 11, 10.5, 11.5, 12, 11, 11.5]
    changes = [Fraction(b).limit_denominator() - Fraction(a).limit_denominator()
               for a, b in zip(closes, closes[1:])]
    n = 3
    gain = sum(max(c, 0) for c in changes[:n]) / n  # simple means of the first n changes
    loss = sum(max(-c, 0) for c in changes[:n]) / n
    expected = [100 - 100 / (1 + gain / loss)]
    for change in changes[n:]:  # then Wilder: avg = (avg * (n - 1) + new) / n
        gain = (gain * (n - 1) + max(change, 0)) / n
        loss = (loss * (n - 1) + max(-change, 0)) / n
        expected.append(100 - 100 / (1 + gain / loss))
    assert [float(e) for e in expected] == pytest.approx([80, 84.6153846, 50, 61.7391304])
    bars = candles({"X": np.array(closes, dtype=float)}, np.arange(7) * DAY)
    result = compute_indicators(bars, "1d", [one("rsi_3", "RSI", {"timeperiod": 3})])
    np.testing.assert_allclose(series(result, "rsi_3"), [float(e) for e in expected], rtol=1e-12)


def test_session_vwap_by_hand_restarts_each_session():
    sessions = XNYS.sessions(dt.date(2024, 11, 26), dt.date(2024, 11, 27))
    first, second = sessions["open"]
    bar_start = np.array([first, first + 300, first + 600, second, second + 300], dtype=np.int64)
    bars = as_candle_frame(
        pd.DataFrame(
            {
                "symbol": "X",
                "bar_start": bar_start,
                "open": [10.0, 11, 12, 20, 21],
                "high": [11.0, 12, 13, 21, 22],
                "low": [9.0, 10, 11, 19, 20],
                "close": [10.0, 11, 12, 20, 21],
                "volume": [100.0, 200, 100, 50, 150],
                "minutes": 5,
                "complete": True,
            }
        )
    )
    # typical prices 10, 11, 12 | 20, 21
    expected = [
        10.0,
        (10 * 100 + 11 * 200) / 300,
        (10 * 100 + 11 * 200 + 12 * 100) / 400,
        20.0,  # the second session starts afresh
        (20 * 50 + 21 * 150) / 200,
    ]
    vwap = [s for s in DEFAULT_INDICATORS if s.name == "vwap"]
    result = compute_indicators(bars, "5m", vwap, sessions=sessions)
    np.testing.assert_allclose(series(result, "vwap"), expected, rtol=1e-12)
    np.testing.assert_array_equal(series(result, "vwap").index, bar_start)
    with pytest.raises(ValueError, match="sessions"):
        compute_indicators(bars, "5m", vwap)


def test_intraday_defaults_equal_talib_and_a_pandas_vwap():
    sessions = XNYS.sessions(dt.date(2024, 3, 7), dt.date(2024, 3, 12))
    starts = np.concatenate(
        [np.arange(o, c, 300) for o, c in zip(sessions["open"], sessions["close"])]
    )
    bars = candles({"X": random_walk(len(starts), 7), "Y": random_walk(len(starts) - 5, 8)}, starts)
    result = compute_indicators(bars, "5m", DEFAULT_INDICATORS, sessions=sessions)
    for symbol in ("X", "Y"):
        mine = bars[bars["symbol"] == symbol].reset_index(drop=True)
        c = np.ascontiguousarray(mine["close"].to_numpy())
        for name, values in {"sma_20": talib.SMA(c, timeperiod=20),
                             "ema_20": talib.EMA(c, timeperiod=20),
                             "rsi_14": talib.RSI(c, timeperiod=14)}.items():
            np.testing.assert_allclose(series(result, name, symbol), values[~np.isnan(values)],
                                       rtol=1e-12)
        local = pd.to_datetime(mine["bar_start"], unit="s", utc=True).dt.tz_convert(NEW_YORK)
        day = local.dt.date
        typical = (mine["high"] + mine["low"] + mine["close"]) / 3
        weighted = (typical * mine["volume"]).groupby(day).cumsum()
        expected = weighted / mine["volume"].groupby(day).cumsum()
        np.testing.assert_allclose(series(result, "vwap", symbol), expected, rtol=1e-10)


@pytest.mark.parametrize("spec", [one("rsi_14", "RSI", {"timeperiod": 14}),
                                  one("ema_50", "EMA", {"timeperiod": 50})])
def test_warmup_rule_matches_full_history(spec):
    n = 5000
    full_bars = candles({"X": random_walk(n, 42)}, np.arange(n) * DAY)
    full = series(compute_indicators(full_bars, "1d", [spec]), spec.name).iloc[-1]
    k = history_bars([spec], "1d")
    assert k == lookback(spec) + 250
    tail = compute_indicators(full_bars.iloc[-k:].reset_index(drop=True), "1d", [spec])
    assert series(tail, spec.name).iloc[-1] == pytest.approx(full, rel=1e-5)
    # the rule matters: with only 20 bars beyond the lookback the value is visibly off
    short = full_bars.iloc[-(lookback(spec) + 20):].reset_index(drop=True)
    off = series(compute_indicators(short, "1d", [spec]), spec.name).iloc[-1]
    assert off != pytest.approx(full, rel=1e-5)


def test_specs_are_frozen_and_validated():
    spec = DEFAULT_INDICATORS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    with pytest.raises(TypeError):
        spec.params["timeperiod"] = 3
    assert hash(spec) == hash(dataclasses.replace(spec))
    params = {"timeperiod": 20, "nbdevup": 2, "nbdevdn": 2, "matype": 0}
    bb = IndicatorSpec("bb", "BBANDS", params, ("close",), ("u", "m", "l"), ("1d",))
    assert bb.params["nbdevup"] == 2.0 and isinstance(bb.params["nbdevup"], float)
    with pytest.raises(ValueError, match="indicator 'e': EMA reads 1 of the candle columns"):
        IndicatorSpec("e", "EMA", {}, ("close", "open"), ("e",), ("1d",))


YAML_ERRORS = {
    "unknown function": (
        "- {name: x, function: SMAX, params: {timeperiod: 3}, inputs: [close], outputs: [x], "
        "intervals: [1d]}",
        r"indicator 1: indicator 'x': unknown function 'SMAX'; known: SMA, EMA, RSI",
    ),
    "negative period": (
        "- {name: x, function: SMA, params: {timeperiod: -3}, inputs: [close], outputs: [x], "
        "intervals: [1d]}",
        r"SMA parameter timeperiod must be a non-negative integer, got -3",
    ),
    "text period": (
        "- {name: x, function: EMA, params: {timeperiod: ten}, inputs: [close], outputs: [x], "
        "intervals: [1d]}",
        r"EMA parameter timeperiod must be a non-negative integer, got 'ten'",
    ),
    "unknown parameter": (
        "- {name: x, function: SMA, params: {period: 3}, inputs: [close], outputs: [x], "
        "intervals: [1d]}",
        r"unknown parameter 'period' for SMA; known: timeperiod",
    ),
    "non-numeric deviation": (
        "- {name: b, function: BBANDS, params: {nbdevup: two}, inputs: [close], "
        "outputs: [u, m, l], intervals: [1d]}",
        r"BBANDS parameter nbdevup must be a number, got 'two'",
    ),
    "rejected by TA-Lib": (
        "- {name: r, function: RSI, params: {timeperiod: 1}, inputs: [close], outputs: [r], "
        "intervals: [1d]}",
        r"TA-Lib rejects the parameters \{'timeperiod': 1\} of RSI",
    ),
    "zero period": (
        "- {name: s, function: SMA, params: {timeperiod: 0}, inputs: [close], outputs: [s], "
        "intervals: [1d]}",
        r"TA-Lib rejects the parameters \{'timeperiod': 0\} of SMA",
    ),
    "wrong output count": (
        "- {name: m, function: MACD, inputs: [close], outputs: [m], intervals: [1d]}",
        r"MACD has 3 outputs; got \['m'\]",
    ),
    "wrong inputs": (
        "- {name: a, function: ATR, inputs: [close], outputs: [a], intervals: [1d]}",
        r"ATR reads 3 of the candle columns",
    ),
    "unknown interval": (
        "- {name: x, function: SMA, inputs: [close], outputs: [x], intervals: [2h]}",
        r"unknown interval '2h'",
    ),
    "missing field": (
        "- {name: x, function: SMA, inputs: [close], intervals: [1d]}",
        r"missing fields \['outputs'\]",
    ),
    "unknown field": (
        "- {name: x, function: SMA, inputs: [close], outputs: [x], intervals: [1d], period: 3}",
        r"unknown fields \['period'\]",
    ),
    "daily vwap": (
        "- {name: v, function: VWAP, inputs: [high, low, close, volume], outputs: [v], "
        "intervals: [1d]}",
        r"VWAP restarts every session",
    ),
    "clashing outputs": (
        "- {name: a, function: SMA, inputs: [close], outputs: [x], intervals: [1d]}\n"
        "- {name: b, function: EMA, inputs: [close], outputs: [x], intervals: [1d, 5m]}",
        r"indicators 'a' and 'b' both write 'x' on 1d bars",
    ),
    "not a list": ("name: x\nfunction: SMA\n", r"expected a list"),
}


@pytest.mark.parametrize("case", sorted(YAML_ERRORS))
def test_yaml_spec_errors_are_clear(tmp_path, case):
    text, message = YAML_ERRORS[case]
    path = tmp_path / "indicators.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        load_indicator_specs(path)
    assert str(path) in str(raised.value)


def test_unsorted_bars_raise():
    bars = candles({"X": random_walk(50, 1)}, np.arange(50) * DAY)
    with pytest.raises(ValueError, match="sorted"):
        compute_indicators(bars.iloc[::-1], "1d", DEFAULT_INDICATORS)
