"""Values of the formula language: TA-Lib indicators, hand-computed window functions, offsets,
time-frame alignment without look-ahead, cross sections, history inference and NaN semantics."""

import numpy as np
import pandas as pd
import pytest
import talib

from candleflow.formula import (
    BarPanel,
    Scan,
    compile_expression,
    compile_formula,
    evaluate_expression,
    evaluate_scans,
    required_history,
)
from candleflow.formula.limits import session_seconds

DAY = 86400
T0 = 1_700_000_000 - 1_700_000_000 % DAY + 13 * 3600 + 1800  # a 13:30 UTC session open
NAN = np.nan


def candles(rows) -> pd.DataFrame:
    """rows: (symbol, bar_start, open, high, low, close, volume[, complete])"""
    recs = []
    for r in rows:
        sym, t, o, h, l, c, v, *rest = r
        recs.append(dict(symbol=sym, bar_start=t, open=o, high=h, low=l, close=c, volume=v, minutes=0,
                         complete=rest[0] if rest else True))
    return pd.DataFrame(recs)


def closes_panel(series: dict[str, list], interval="1d", step=DAY, start=T0, opens=None) -> BarPanel:
    """One symbol per key; a None in the list means no bar at that time."""
    rows = []
    for sym, values in series.items():
        for i, c in enumerate(values):
            if c is None:
                continue
            o = opens[sym][i] if opens else c
            rows.append((sym, start + i * step, o, max(o, c) + 1, min(o, c) - 1, c, 1000.0 + i))
    return BarPanel.from_candles(candles(rows), interval)


def values(expr, panel, interval=None):
    return evaluate_expression(expr, panel, interval)


@pytest.fixture(scope="module")
def walk():
    """4 symbols x 320 daily bars of random-walk OHLCV; symbol D starts 100 bars late."""
    rng = np.random.default_rng(11)
    n, syms = 320, ["A", "B", "C", "D"]
    rows, data = [], {}
    for k, s in enumerate(syms):
        close = 50 + 10 * k + np.cumsum(rng.standard_normal(n))
        open_ = close + rng.standard_normal(n) * 0.3
        high = np.maximum(open_, close) + rng.random(n)
        low = np.minimum(open_, close) - rng.random(n)
        vol = rng.integers(1_000, 9_000, n).astype(float)
        first = 100 if s == "D" else 0
        data[s] = tuple(a[first:] for a in (open_, high, low, close, vol))
        for i in range(first, n):
            rows.append((s, T0 + i * DAY, open_[i], high[i], low[i], close[i], vol[i]))
    panel = BarPanel.from_candles(candles(rows), "1d")
    return panel, data


def own(panel_values: np.ndarray, row: int, first: int) -> np.ndarray:
    return panel_values[row, first:]


INDICATORS = [
    ("sma(close, 20)", lambda o, h, l, c, v: talib.SMA(c, 20)),
    ("sma(volume, 7)", lambda o, h, l, c, v: talib.SMA(v, 7)),
    ("ema(close, 12)", lambda o, h, l, c, v: talib.EMA(c, 12)),
    ("ema(high, 50)", lambda o, h, l, c, v: talib.EMA(h, 50)),
    ("rsi(14)", lambda o, h, l, c, v: talib.RSI(c, 14)),
    ("rsi(open, 7)", lambda o, h, l, c, v: talib.RSI(o, 7)),
    ("macd(close)", lambda o, h, l, c, v: talib.MACD(c, 12, 26, 9)[0]),
    ("macd_signal(close)", lambda o, h, l, c, v: talib.MACD(c, 12, 26, 9)[1]),
    ("macd_hist(close, 5, 35, 5)", lambda o, h, l, c, v: talib.MACD(c, 5, 35, 5)[2]),
    ("macd_hist(close, signal=4, fast=8)", lambda o, h, l, c, v: talib.MACD(c, 8, 26, 4)[2]),
    ("bb_upper(close, 20, 2)", lambda o, h, l, c, v: talib.BBANDS(c, 20, 2, 2, 0)[0]),
    ("bb_middle(close)", lambda o, h, l, c, v: talib.BBANDS(c, 20, 2, 2, 0)[1]),
    ("bb_lower(close, 10, 2.5)", lambda o, h, l, c, v: talib.BBANDS(c, 10, 2.5, 2.5, 0)[2]),
    ("atr(14)", lambda o, h, l, c, v: talib.ATR(h, l, c, 14)),
    ("atr(5)", lambda o, h, l, c, v: talib.ATR(h, l, c, 5)),
    ("highest(high, 10)", lambda o, h, l, c, v: talib.MAX(h, 10)),
    ("lowest(low, 10)", lambda o, h, l, c, v: talib.MIN(l, 10)),
    ("ema(sma(close, 5), 5)", lambda o, h, l, c, v: talib.EMA(talib.SMA(c, 5), 5)),
]


@pytest.mark.parametrize("expr,ref", INDICATORS, ids=[e for e, _ in INDICATORS])
def test_indicators_equal_talib(walk, expr, ref):
    panel, data = walk
    got = values(expr, panel)
    for row, sym in enumerate(panel.symbols):
        first = 100 if sym == "D" else 0
        expected = ref(*data[sym])
        np.testing.assert_allclose(own(got, row, first), expected, rtol=1e-9, atol=0, equal_nan=True)
        assert np.isnan(got[row, :first]).all()


def test_bbands_population_std(walk):
    panel, data = walk
    c = data["A"][3]
    up = values("bb_upper(close, 20, 1)", panel)[0]
    mid = values("bb_middle(close, 20, 1)", panel)[0]
    window = c[100:120]
    assert up[119] - mid[119] == pytest.approx(np.std(window, ddof=0), rel=1e-9)


SMALL = {"X": [1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 6.0]}
SMALL_OPEN = {"X": [2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 6.0]}


@pytest.fixture(scope="module")
def small():
    return closes_panel(SMALL, opens=SMALL_OPEN)


HAND = [
    ("close[1]", [NAN, 1, 3, 2, 5, 4, 6]),
    ("close[2]", [NAN, NAN, 1, 3, 2, 5, 4]),
    ("highest(close, 3)", [NAN, NAN, 3, 5, 5, 6, 6]),
    ("lowest(close, 3)", [NAN, NAN, 1, 2, 2, 4, 4]),
    ("highest(close, 1)", [1, 3, 2, 5, 4, 6, 6]),
    ("change(close)", [NAN, 2, -1, 3, -1, 2, 0]),
    ("change(close, 2)", [NAN, NAN, 1, 2, 2, 1, 2]),
    ("pct_change(close)", [NAN, 200, -100 / 3, 150, -20, 50, 0]),
    ("pct_change(close, 3)", [NAN, NAN, NAN, 400, 100 / 3, 200, 20]),
    # crossover = a > b now and a[1] <= b[1]; touching does not cross, leaving a touch does
    ("crossover(close, open)", [0, 0, 0, 1, 0, 1, 0]),
    # crossunder = a < b now and a[1] >= b[1]; first bar: no previous bar -> unknown
    ("crossunder(close, open)", [NAN, 0, 1, 0, 0, 0, 0]),
    ("crossover(close, 4)", [0, 0, 0, 1, 0, 1, 0]),
    ("bars_since(close > open)", [NAN, NAN, NAN, 0, 1, 0, 1]),
    ("bars_since(close >= open)", [NAN, 0, 1, 0, 0, 0, 0]),
    ("any_of(close > open, 2)", [NAN, 0, 0, 1, 1, 1, 1]),
    ("all_of(close >= open, 2)", [0, 0, 0, 0, 1, 1, 1]),
    ("any_of(close > open, 1)", [0, 0, 0, 1, 0, 1, 0]),
    ("all_of(close > 0, 3)", [NAN, NAN, 1, 1, 1, 1, 1]),
    ("sma(close, 3)", [NAN, NAN, 2, 10 / 3, 11 / 3, 5, 16 / 3]),
    ("close - open", [-1, 0, -1, 1, 0, 1, 0]),
    ("close / (close - open)", [-1, NAN, -2, 5, NAN, 6, NAN]),
    ("close ** 2", [1, 9, 4, 25, 16, 36, 36]),
    ("close ** -1", [1, 1 / 3, 1 / 2, 1 / 5, 1 / 4, 1 / 6, 1 / 6]),
    ("-close[1] + 10", [NAN, 9, 7, 8, 5, 6, 4]),
    ("abs(change(close))", [NAN, 2, 1, 3, 1, 2, 0]),
    ("min(close, open)", [1, 3, 2, 4, 4, 5, 6]),
    ("max(close, 4)", [4, 4, 4, 5, 4, 6, 6]),
    ("2 < close <= 5", [0, 1, 0, 1, 1, 0, 0]),
    ("close == open or close > 5", [0, 1, 0, 0, 1, 1, 1]),
    ("close > 1 and not (close == open)", [0, 0, 1, 1, 0, 1, 0]),
    ("sma(close, 2)[1]", [NAN, NAN, 2, 2.5, 3.5, 4.5, 5]),
    ("crossover(close, open)[1]", [NAN, 0, 0, 0, 1, 0, 1]),
]


@pytest.mark.parametrize("expr,expected", HAND, ids=[e for e, _ in HAND])
def test_hand_computed(small, expr, expected):
    got = values(expr, small)[0]
    np.testing.assert_allclose(got, np.array(expected, dtype=float), rtol=1e-12, equal_nan=True)


def test_nan_is_unknown_not_false():
    p = closes_panel({"X": [1.0, 2.0, 3.0, 4.0, 5.0]})
    np.testing.assert_array_equal(values("close > sma(close, 3)", p)[0], [NAN, NAN, 1, 1, 1])
    # not(unknown) stays unknown, so a missing value never becomes a match through 'not'
    np.testing.assert_array_equal(values("not (close > sma(close, 3))", p)[0], [NAN, NAN, 0, 0, 0])
    # true or unknown = true; false and unknown = false
    np.testing.assert_array_equal(values("close > sma(close, 3) or close > 0", p)[0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(values("close > sma(close, 3) and close < 0", p)[0], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(values("close > sma(close, 3) and close > 0", p)[0], [NAN, NAN, 1, 1, 1])
    # division by zero is NaN, not inf
    assert np.isnan(values("close / (close - close)", p)).all()
    assert np.isnan(values("(close / 0) > 1", p)).all()


def test_not_of_nan_never_matches_in_a_scan():
    # close == open on the 3rd bar: the ratio is NaN there; 'not (ratio > 1)' must not match it
    p = closes_panel({"X": [1.0, 2.0, 3.0, 4.0]}, opens={"X": [2.0, 1.0, 3.0, 1.0]})
    res = evaluate_scans([Scan("s", "not (close / (close - open) > 1)")], {"1d": p})
    assert [m.bar_start for m in res[0].matches] == [T0]  # ratio 1/(1-2) = -1 -> not(false) = true
    assert res[0].error is None


def test_cross_sections_by_hand():
    p = closes_panel({
        "A": [10.0, 1.0],
        "B": [30.0, 2.0],
        "C": [20.0, 3.0],
        "D": [30.0, 4.0],
        "E": [None, 5.0],  # no bar on the first day: excluded from that cross-section
    })
    rank = values("rank(close)", p)
    np.testing.assert_array_equal(rank[:, 0], [4, 1, 3, 1, NAN])  # ties share the best rank
    np.testing.assert_array_equal(rank[:, 1], [5, 4, 3, 2, 1])
    pct = values("percentile(close)", p)
    np.testing.assert_allclose(pct[:, 0], [0, 250 / 3, 100 / 3, 250 / 3, NAN], equal_nan=True)
    np.testing.assert_allclose(pct[:, 1], [0, 25, 50, 75, 100])
    z = values("zscore(close)", p)
    std0 = np.sqrt(((10 - 22.5) ** 2 + (30 - 22.5) ** 2 + (20 - 22.5) ** 2 + (30 - 22.5) ** 2) / 4)
    np.testing.assert_allclose(z[:, 0], [-12.5 / std0, 7.5 / std0, -2.5 / std0, 7.5 / std0, NAN], equal_nan=True)
    np.testing.assert_allclose(z[:, 1], np.array([-2, -1, 0, 1, 2]) / np.sqrt(2))
    # a NaN argument (no previous bar) is excluded as well: changes -9, -28, -17, -26, NaN
    np.testing.assert_array_equal(values("rank(change(close))", p)[:, 1], [1, 4, 2, 3, NAN])


SIX = {s: [10.0 * (k + 1)] for k, s in enumerate("ABCDEF")}  # closes 10 ... 60: mean 35
SIX_Z = (np.arange(10.0, 61.0, 10.0) - 35) / np.sqrt(((np.arange(10.0, 61.0, 10.0) - 35) ** 2).mean())


@pytest.mark.parametrize("scale", ["", " * 1e200", " * 1e-200", " * 1e300", " * 1e-300", " * 2 ** 10", " * 0.5 ** 10"])
def test_zscore_does_not_depend_on_the_price_scale(scale):
    """(x - mean) / std by hand: deviations -25 ... 25, population std sqrt(875 / 3). The squared
    deviations of close * 1e200 overflow and those of close * 1e-200 underflow, yet the z-scores
    are the same: three of the six are above 0."""
    p = closes_panel(SIX)
    np.testing.assert_allclose(values(f"zscore(close{scale})", p)[:, 0], SIX_Z, rtol=1e-12)
    np.testing.assert_array_equal(values(f"zscore(close{scale}) > 0", p)[:, 0], [0, 0, 0, 1, 1, 1])


def test_zscore_of_values_whose_sum_overflows():
    p = closes_panel({"A": [1.7e308], "B": [1.7e308], "C": [-1.7e308], "D": [0.0]})
    # mean 0.425e308, deviations 1.275, 1.275, -2.125, -0.425 (x 1e308)
    deviations = np.array([1.275, 1.275, -2.125, -0.425])
    np.testing.assert_allclose(values("zscore(close)", p)[:, 0], deviations / np.sqrt((deviations ** 2).mean()),
                               rtol=1e-12)
    assert np.isnan(values("zscore(close * 0)", p)).all()  # std 0


# Each operator overflowing on the second bar only (closes 1 and 10): the result is NaN (no value),
# like a division by zero, never an infinity that would then compare as a number.
OVERFLOWS = [
    ("close * 1e307 + 1.6e308", 1.7e308),
    ("-1.6e308 - close * 1e307", -1.7e308),
    ("close * 1e308", 1e308),
    ("close / 1e-308", 1e308),
    ("(close * 1e77) ** 4", 1e308),
    ("-(close * 1e308)", -1e308),
]


@pytest.mark.parametrize("expr,first", OVERFLOWS, ids=[e for e, _ in OVERFLOWS])
def test_arithmetic_overflow_is_nan_for_every_operator(expr, first):
    p = closes_panel({"X": [1.0, 10.0]})
    np.testing.assert_allclose(values(expr, p)[0], [first, NAN], rtol=1e-12, equal_nan=True)
    for cmp in (f"{expr} > 0", f"{expr} < 0", f"not ({expr} == 0)"):
        np.testing.assert_array_equal(values(cmp, p)[0, 1], NAN)  # unknown
        res = evaluate_scans([Scan("o", cmp)], {"1d": p})
        assert T0 + DAY not in [m.bar_start for m in res[0].matches]


@pytest.mark.parametrize("expr", ["change((close - 5) * 3e307)", "pct_change((close - 5) * 3e307)"])
def test_change_overflow_is_nan(expr):
    # (close - 5) * 3e307 is -1.2e308 then 1.5e308: the change overflows
    p = closes_panel({"X": [1.0, 10.0]})
    assert np.isnan(values(expr, p)).all()
    assert np.isnan(values(f"{expr} > 0", p)).all()


def test_rank_top_n_formula():
    p = closes_panel({s: [10.0, 10.0 + k] for k, s in enumerate("ABCDE")})
    got = values("rank(pct_change(close, 1)) <= 2", p)[:, 1]
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 1])


@pytest.mark.parametrize("cmp", ["rank(close) <= 2", "rank(close) < 2.5", "rank(close) > 1", "rank(close) >= 3",
                                 "2 >= rank(close)", "3 < rank(close)", "rank(close) <= 0", "rank(close) <= 99"])
def test_rank_comparisons_agree_with_the_full_rank(cmp):
    """rank(x) compared with a number is computed by partition (top-k); same values as ranking."""
    p = closes_panel({"A": [10.0, 1.0], "B": [30.0, 2.0], "C": [20.0, 3.0], "D": [30.0, None], "E": [None, 5.0]})
    full = cmp.replace("rank(close)", "(rank(close) + 0)")
    np.testing.assert_array_equal(values(cmp, p), values(full, p))
    rank = values("rank(close)", p)
    assert np.isnan(values(cmp, p)[np.isnan(rank)]).all()


def test_rank_term_values_in_matches():
    p = closes_panel({s: [10.0 + k, 20.0 - k, 5.0 * k] for k, s in enumerate("ABCDEF")})
    res = evaluate_scans([Scan("top2", "rank(close) <= 2")], {"1d": p})
    got = {(m.symbol, m.bar_start): m.values["rank(close)"] for r in res for m in r.matches}
    assert got == {
        ("F", T0): 1.0, ("E", T0): 2.0,
        ("A", T0 + DAY): 1.0, ("B", T0 + DAY): 2.0,
        ("F", T0 + 2 * DAY): 1.0, ("E", T0 + 2 * DAY): 2.0,
    }


def test_offsets_and_windows_count_the_symbols_own_bars():
    p = closes_panel({
        "GAP": [1.0, 2.0, 3.0, 4.0, 5.0, None, 7.0, 8.0, 9.0, 10.0],
        "FULL": [float(i) for i in range(10)],
    })
    row = p.symbols.index("GAP")
    prev = values("close[1]", p)[row]
    np.testing.assert_array_equal(prev, [NAN, 1, 2, 3, 4, NAN, 5, 7, 8, 9])
    sma = values("sma(close, 3)", p)[row]
    np.testing.assert_allclose(sma, [NAN, NAN, 2, 3, 4, NAN, 16 / 3, 20 / 3, 8, 9], equal_nan=True)
    own_series = np.array([1.0, 2, 3, 4, 5, 7, 8, 9, 10])
    ema = values("ema(close, 3)", p)[row]
    np.testing.assert_allclose(np.delete(ema, 5), talib.EMA(own_series, 3), equal_nan=True)
    assert np.isnan(ema[5])
    # the other symbol is unaffected by the gap
    np.testing.assert_allclose(values("close[1]", p)[p.symbols.index("FULL")], [NAN] + list(range(9)), equal_nan=True)


def test_vwap_resets_each_session():
    rows = [
        ("X", T0, 10, 11, 9, 10, 100.0),
        ("X", T0 + 3600, 12, 13, 11, 12, 300.0),
        ("X", T0 + DAY, 20, 21, 19, 20, 50.0),
        ("X", T0 + DAY + 3600, 26, 27, 25, 26, 150.0),
    ]
    p = BarPanel.from_candles(candles(rows), "1h")
    np.testing.assert_allclose(values("vwap", p)[0], [10, 11.5, 20, 24.5])
    d = BarPanel.from_candles(candles(rows), "1d")
    np.testing.assert_allclose(values("vwap", d)[0], [10, 12, 20, 26])


def _daily_and_hourly(last_complete=False):
    daily = [("S", T0 + i * DAY, c, c + 1, c - 1, c, 1e4, i < 4 or last_complete)
             for i, c in enumerate([10.0, 20.0, 30.0, 40.0, 50.0])]
    hourly = [("S", T0 + d * DAY + k * 3600, 1.0, 2.0, 0.5, float(100 * d + k), 10.0)
              for d in range(6) for k in range(7)]
    return BarPanel.from_candles(candles(daily), "1d"), BarPanel.from_candles(candles(hourly), "1h")


def test_timeframe_uses_the_last_completed_session_before_the_bar():
    daily, hourly = _daily_and_hourly(last_complete=False)
    panels = {"1d": daily, "1h": hourly}
    got = values('tf("1d", close)', panels, "1h")[0].reshape(6, 7)
    # day 0: no earlier session; days 1-4: the previous session, never the current one (no
    # look-ahead even though the current day's bar exists); day 5 has no daily bar yet and
    # day 4's bar is not complete, so day 3's close is still the latest completed value
    expected = [NAN, 10, 20, 30, 40, 40]
    for d in range(6):
        np.testing.assert_array_equal(got[d], [expected[d]] * 7)
    sma = values('tf("1d", sma(close, 2))', panels, "1h")[0].reshape(6, 7)[:, 0]
    np.testing.assert_array_equal(sma, [NAN, NAN, 15, 25, 35, 35])
    daily2, _ = _daily_and_hourly(last_complete=True)
    got2 = values('tf("1d", close)', {"1d": daily2, "1h": hourly}, "1h")[0].reshape(6, 7)[:, 0]
    np.testing.assert_array_equal(got2, [NAN, 10, 20, 30, 40, 50])
    # the same interval as the scan is just the value itself
    np.testing.assert_array_equal(values('tf("1h", close)', panels, "1h"), values("close", panels, "1h"))


def test_intraday_timeframe_needs_the_bar_to_have_ended():
    h = [("S", T0, 1, 2, 0, 100.0, 1.0), ("S", T0 + 3600, 1, 2, 0, 200.0, 1.0)]
    m = [("S", T0 + k * 900, 1, 2, 0, float(k), 1.0) for k in range(8)]
    panels = {"1h": BarPanel.from_candles(candles(h), "1h"), "15m": BarPanel.from_candles(candles(m), "15m")}
    got = values('tf("1h", close)', panels, "15m")[0]
    # 13:30-14:30 hourly bar becomes visible at the 14:30 bar; the 14:30 one at 15:30
    np.testing.assert_array_equal(got, [NAN, NAN, NAN, NAN, 100, 100, 100, 100])


def test_timeframe_in_a_scan_reports_the_value():
    daily, hourly = _daily_and_hourly()
    res = evaluate_scans([Scan("above_prev_close", 'close > tf("1d", close) * 10', "1h")], {"1d": daily, "1h": hourly})
    (r,) = res
    assert r.error is None
    # hourly close 100 d + k against 10 x the previous completed daily close: 100, 200, 300, 400
    # on days 1-4 (k = 0 is not above), 400 on day 5 (day 4's daily bar is incomplete)
    assert len(r.matches) == 4 * 6 + 7
    m = r.matches[0]
    assert m.bar_start == T0 + DAY + 3600
    assert m.values == {"close": 101.0, 'tf("1d", close)': 10.0}
    assert r.matches[-1].values == {"close": 506.0, 'tf("1d", close)': 40.0}


HISTORY = [
    ("close > 1", "1d", {"1d": 1}),
    ("close > sma(close, 50)", "1d", {"1d": 50}),
    ("close[3] > highest(high, 20)[1]", "1d", {"1d": 21}),
    ("rsi(14) < 30", "1d", {"1d": 265}),
    ("macd_hist(close) > 0", "1d", {"1d": 284}),
    ("atr(14) > 1", "1d", {"1d": 265}),
    ("ema(sma(close, 10), 5) > 1", "1d", {"1d": 264}),
    ("crossover(ema(close, 12), ema(close, 26))", "1d", {"1d": 277}),
    ("rank(pct_change(close, 20)) <= 20 and close > bb_upper(close, 20, 2)", "1d", {"1d": 21}),
    ("any_of(close > sma(close, 5), 3)", "1d", {"1d": 7}),
    ('close > tf("1d", sma(close, 20))', "1h", {"1h": 1, "1d": 21}),
    ('sma(tf("1d", close), 13) > 0', "1h", {"1h": 13, "1d": 4}),
    ('tf("1h", close[2]) > close', "15m", {"15m": 1, "1h": 4}),
]


@pytest.mark.parametrize("formula,interval,expected", HISTORY, ids=[h[0] for h in HISTORY])
def test_history_inference(formula, interval, expected):
    assert compile_formula(formula).history_bars(interval) == expected


MINIMUM = [
    ("close > 1", "1d", {"1d": 1}),
    ("close > sma(close, 50)", "1d", {"1d": 50}),
    ("rsi(14) < 30", "1d", {"1d": 15}),
    ("atr(14) > 1", "1d", {"1d": 15}),
    ("macd_hist(close) > 0", "1d", {"1d": 34}),  # 25 + 8 + 1
    ("crossover(ema(close, 12), ema(close, 26))", "1d", {"1d": 27}),  # 25 + 1 + 1
    ("close > sma(close, 5) and rsi(close, 3) > 50", "1d", {"1d": 5}),
    ('close > tf("1d", rsi(14))', "1h", {"1h": 1, "1d": 16}),  # 14 + 1 + 1 skipped bar
    # 12 hourly bars span ceil(12 h / 6.5 h) = 2 sessions, + 1 skipped bar, + rsi 14, + 1
    ('sma(tf("1d", rsi(14)), 13) > 0', "1h", {"1h": 13, "1d": 18}),
]


@pytest.mark.parametrize("formula,interval,expected", MINIMUM, ids=[m[0] for m in MINIMUM])
def test_minimum_bars(formula, interval, expected):
    assert compile_formula(formula).minimum_bars(interval) == expected


def test_minimum_bars_leave_out_only_the_warm_up():
    rsi = compile_formula("rsi(14) < 30")
    assert rsi.minimum_bars("1d") == {"1d": 15}
    assert rsi.history_bars("1d") == {"1d": 265}
    tf = compile_formula('sma(tf("1d", rsi(14)), 13) > 0')
    assert tf.minimum_bars("1h") == {"1h": 13, "1d": 18}
    assert tf.history_bars("1h") == {"1h": 13, "1d": 268}
    plain = compile_formula('close > tf("1d", sma(close, 20))')
    assert plain.minimum_bars("1h") == plain.history_bars("1h") == {"1h": 1, "1d": 21}


def test_an_intraday_lookback_spans_days_of_the_configured_calendar(monkeypatch):
    """12 hourly bars span 2 XNYS sessions of 6.5 h, but 1 day of a 24/7 market."""
    formula = 'sma(tf("1d", rsi(14)), 13) > 0'
    monkeypatch.setenv("CANDLEFLOW_CALENDAR", "24/7")
    session_seconds.cache_clear()
    try:
        assert compile_formula(formula).minimum_bars("1h") == {"1h": 13, "1d": 17}
    finally:
        session_seconds.cache_clear()
    monkeypatch.delenv("CANDLEFLOW_CALENDAR")
    assert compile_formula(formula).minimum_bars("1h") == {"1h": 13, "1d": 18}


def test_required_history_across_scans():
    scans = [
        Scan("a", "close > sma(close, 50)"),
        Scan("b", "rsi(14) < 30"),
        Scan("c", 'close > tf("1d", sma(close, 20))', "1h"),
    ]
    assert required_history(scans) == {"1h": 1, "1d": 265}


def test_too_little_history_reason():
    p = closes_panel({"NEW": [float(i) for i in range(30)], "OLD": [float(i) for i in range(60)]})
    res = {r.symbol: r for r in evaluate_scans([Scan("trend", "close > sma(close, 50)")], {"1d": p})}
    assert res["NEW"].notes == ["scan 'trend': not enough 1d history: needs 50 bars, has 30"]
    assert res["NEW"].error is None
    assert res["NEW"].matches == []
    assert res["OLD"].error is None and res["OLD"].notes == []
    assert len(res["OLD"].matches) == 11  # bars 49..59 of a rising series


def test_terms_and_canonical_text():
    c = compile_formula("close>sma(close,50) and rsi(14)<30")
    assert c.key == "close > sma(close, 50) and rsi(close, 14) < 30"
    assert list(c.terms) == ["close", "sma(close, 50)", "rsi(close, 14)"]
    assert c.intervals == frozenset()
    c2 = compile_formula('close > tf("1d", highest(high, 5)) and volume > 1.5 * sma(volume, 20)')
    assert list(c2.terms) == ["close", 'tf("1d", highest(high, 5))', 'tf("1d", high)', "volume", "sma(volume, 20)"]
    assert c2.intervals == frozenset({"1d"})
    assert compile_expression("macd(close)").key == "macd(close, 12, 26, 9)"
    # the canonical text compiles to itself
    for text in ["-close ** 2 > (-close) ** 2", "not (a_ > 1)".replace("a_", "close"), "1 < close < 2"]:
        k = compile_formula(text).key
        assert compile_formula(k).key == k


def test_chained_comparison_means_and():
    assert compile_formula("1 < close < 2").key == "1 < close and close < 2"


def test_panel_from_candles_layout():
    frame = candles([
        ("B", T0 + DAY, 1, 2, 0, 1.5, 10.0),
        ("A", T0, 1, 2, 0, 1.0, 10.0, False),
        ("A", T0 + 2 * DAY, 1, 2, 0, 3.0, 30.0),
    ])
    p = BarPanel.from_candles(frame, "1d")
    assert p.symbols == ["A", "B"]
    assert p.bar_start.dtype == np.int64
    np.testing.assert_array_equal(p.bar_start, [T0, T0 + DAY, T0 + 2 * DAY])
    np.testing.assert_array_equal(p.close, [[1.0, NAN, 3.0], [NAN, 1.5, NAN]])
    np.testing.assert_array_equal(p.complete, [[False, False, True], [False, True, False]])
    assert p.close.dtype == np.float64 and p.close.shape == (2, 3)
    with pytest.raises(ValueError, match="duplicate"):
        BarPanel.from_candles(pd.concat([frame, frame]), "1d")
    with pytest.raises(ValueError, match="lacks columns: volume"):
        BarPanel.from_candles(frame.drop(columns=["volume"]), "1d")
