"""evaluate_scans: progress, cancellation, per-symbol errors, timeouts, term values, since."""

import logging
import threading

import numpy as np
import pytest
import talib

from candleflow.formula import BarPanel, FormulaError, Scan, evaluate_scans
from candleflow.formula import functions as formula_functions
from candleflow.formula.benchmark import run_scan_workload, synthetic_panel

DAY = 86400
T0 = 1_600_000_000 - 1_600_000_000 % DAY + 14 * 3600 + 1800


def ramp_panel(n_symbols=300, bars=80, short=None, interval="1d", step=DAY):
    """close of symbol i at bar t = 100 + i + t (rising), volume 1000 + t; symbols named S000...
    ``short``: {symbol index: number of bars it has (its last ones)}."""
    t = np.arange(bars, dtype=float)
    close = 100.0 + np.arange(n_symbols)[:, None] + t[None, :]
    vol = np.broadcast_to(1000.0 + t, close.shape).copy()
    for i, n in (short or {}).items():
        close[i, : bars - n] = np.nan
        vol[i, : bars - n] = np.nan
    names = [f"S{i:03d}" for i in range(n_symbols)]
    starts = T0 + np.arange(bars, dtype=np.int64) * step
    return BarPanel(interval, names, starts, close - 0.5, close + 1.0, close - 1.0, close, vol)


def test_progress_reports_blocks_and_ends_with_total():
    panel = ramp_panel(300)
    calls = []
    res = evaluate_scans([Scan("up", "close > close[1]")], {"1d": panel}, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(128, 300), (256, 300), (300, 300)]
    assert [r.symbol for r in res] == panel.symbols
    assert all(r.error is None and len(r.matches) == 79 for r in res)
    assert all(r.seconds >= 0 for r in res)


def test_cancel_marks_the_remaining_symbols():
    panel = ramp_panel(300)
    cancel = threading.Event()
    calls = []

    def progress(done, total):
        calls.append((done, total))
        cancel.set()  # cancel after the first block

    res = evaluate_scans([Scan("up", "close > close[1]")], {"1d": panel}, progress=progress, cancel=cancel)
    assert calls == [(128, 300), (300, 300)]
    assert [r.error for r in res[:128]] == [None] * 128
    assert all(len(r.matches) == 79 for r in res[:128])
    assert [r.error for r in res[128:]] == ["cancelled"] * 172
    assert all(r.matches == [] for r in res[128:])


def test_cancel_before_start():
    cancel = threading.Event()
    cancel.set()
    calls = []
    res = evaluate_scans([Scan("up", "close > 0")], {"1d": ramp_panel(10)}, cancel=cancel,
                         progress=lambda d, t: calls.append((d, t)))
    assert [r.error for r in res] == ["cancelled"] * 10
    assert calls == [(10, 10)]


def test_cancel_during_cross_section(monkeypatch):
    """The cross-section of the first block already needs every symbol; cancelling while its
    argument is being computed (between its blocks) cancels everything."""
    panel = ramp_panel(300)
    cancel = threading.Event()
    real_sma = formula_functions.k.sma

    def sma(x, n):
        cancel.set()
        return real_sma(x, n)

    monkeypatch.setattr(formula_functions.k, "sma", sma)
    calls = []
    res = evaluate_scans([Scan("r", "rank(sma(close, 3)) <= 5")], {"1d": panel}, cancel=cancel,
                         progress=lambda d, t: calls.append((d, t)))
    assert [r.error for r in res] == ["cancelled"] * 300
    assert calls == [(300, 300)]


def test_too_little_history_does_not_affect_others():
    panel = ramp_panel(5, bars=80, short={2: 30})
    res = evaluate_scans([Scan("trend", "close > sma(close, 50)")], {"1d": panel})
    by = {r.symbol: r for r in res}
    assert by["S002"].notes == ["scan 'trend': not enough 1d history: needs 50 bars, has 30"]
    assert by["S002"].error is None  # too little history is a note, not an error
    assert by["S002"].matches == []
    for s in ("S000", "S001", "S003", "S004"):
        assert by[s].error is None and by[s].notes == []
        assert len(by[s].matches) == 80 - 49  # from the 50th bar on


def test_matches_carry_the_term_values():
    panel = ramp_panel(3, bars=40, short={0: 4})
    res = evaluate_scans([Scan("s", "close > sma(close, 5) and rsi(close, 3) > 50")], {"1d": panel})
    # minimum: max(sma 5 - 1, rsi 3) + 1 = 5 bars; the 250-bar warm-up is only loaded, not required
    assert res[0].notes == ["scan 's': not enough 1d history: needs 5 bars, has 4"]
    assert res[0].error is None and res[0].matches == []
    for r in res[1:]:
        assert r.error is None and r.notes == []
        # a rising ramp: close > its 5-bar mean and rsi = 100, from the 5th bar on
        assert [m.bar_start for m in r.matches] == [int(T0 + t * DAY) for t in range(4, 40)]
        assert all(m.values["rsi(close, 3)"] == pytest.approx(100.0) for m in r.matches)
    res = evaluate_scans([Scan("s", "close > sma(close, 5) and volume >= 1030")], {"1d": panel})
    r = res[1]
    assert [m.bar_start for m in r.matches] == [int(T0 + t * DAY) for t in range(30, 40)]
    m = r.matches[0]
    closes = 101.0 + np.arange(40)
    assert m.scan == "s" and m.symbol == "S001" and m.interval == "1d"
    assert m.values == {
        "close": 131.0,
        "sma(close, 5)": pytest.approx(talib.SMA(closes, 5)[30], rel=1e-12),
        "volume": 1030.0,
    }
    assert list(m.values) == ["close", "sma(close, 5)", "volume"]


def test_rsi_scan_values_equal_talib():
    rng = np.random.default_rng(5)
    close = 100 + np.cumsum(rng.standard_normal((20, 400)), axis=1)
    starts = T0 + np.arange(400, dtype=np.int64) * DAY
    panel = BarPanel("1d", [f"R{i}" for i in range(20)], starts, close, close + 1, close - 1, close, np.full(close.shape, 1e5))
    res = evaluate_scans([Scan("oversold", "rsi(14) < 35")], {"1d": panel})
    n = 0
    for i, r in enumerate(res):
        ref = talib.RSI(close[i], 14)
        want = [int(starts[t]) for t in range(14, 400) if ref[t] < 35]  # from the 15th bar on
        assert [m.bar_start for m in r.matches] == want
        for m in r.matches:
            t = int((m.bar_start - T0) // DAY)
            assert m.values["rsi(close, 14)"] == ref[t]
        n += len(want)
    assert n > 0


def test_warm_up_is_not_required():
    """rsi(14) needs 15 bars; the 250-bar warm-up is loaded when available, not required: a symbol
    with 100 bars is evaluated on them (TA-Lib's values from its first computable bar), one with
    10 bars gets a note, not an error."""
    rng = np.random.default_rng(11)
    close = 100 + np.cumsum(rng.standard_normal((2, 100)), axis=1)
    close[1, :90] = np.nan  # NEW has only its last 10 bars
    starts = T0 + np.arange(100, dtype=np.int64) * DAY
    panel = BarPanel("1d", ["OLD", "NEW"], starts, close, close + 1, close - 1, close, np.full(close.shape, 1e5))
    res = evaluate_scans([Scan("any", "rsi(14) < 101")], {"1d": panel})
    old, new = res
    assert old.error is None and old.notes == []
    ref = talib.RSI(close[0], 14)
    assert [m.bar_start for m in old.matches] == [int(b) for b in starts[14:]]  # from the 15th bar on
    assert [m.values["rsi(close, 14)"] for m in old.matches] == ref[14:].tolist()
    assert new.notes == ["scan 'any': not enough 1d history: needs 15 bars, has 10"]
    assert new.error is None and new.matches == []


def test_notes_are_logged_at_info_errors_at_warning(caplog):
    panel = ramp_panel(3, bars=40, short={1: 10})
    with caplog.at_level(logging.INFO, logger="candleflow.formula"):
        res = evaluate_scans([Scan("o", "rsi(14) < 101")], {"1d": panel})
    assert res[1].notes == ["scan 'o': not enough 1d history: needs 15 bars, has 10"] and res[1].error is None
    recs = [r for r in caplog.records if "S001" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in recs] == [
        (logging.INFO, "symbol S001: scan 'o': not enough 1d history: needs 15 bars, has 10")
    ]


def test_since_filter():
    panel = ramp_panel(4, bars=30)
    since = int(panel.bar_start[25])
    res = evaluate_scans([Scan("up", "close > close[1]")], {"1d": panel}, since=since)
    for r in res:
        assert [m.bar_start for m in r.matches] == [int(b) for b in panel.bar_start[25:]]


def test_compile_error_is_raised_before_any_work():
    calls = []
    with pytest.raises(FormulaError) as info:
        evaluate_scans(
            [Scan("ok", "close > 1"), Scan("bad", "smaa(close, 5) > 1")],
            {"1d": ramp_panel(5)},
            progress=lambda d, t: calls.append((d, t)),
        )
    assert info.value.message == "unknown function 'smaa'; did you mean 'sma'?"
    assert calls == []


def test_setup_errors_are_raised():
    with pytest.raises(ValueError, match="no 1h panel was given"):
        evaluate_scans([Scan("x", "close > 1", "1h")], {"1d": ramp_panel(3)})
    with pytest.raises(ValueError, match='uses tf\\("1d", ...\\) but no 1d panel'):
        evaluate_scans([Scan("x", 'close > tf("1d", close)', "1h")], {"1h": ramp_panel(3, interval="1h", step=3600)})
    with pytest.raises(FormulaError) as info:
        evaluate_scans([Scan("x", 'close > tf("1h", close)', "1d")], {"1d": ramp_panel(3)})
    assert info.value.message == "tf(\"1h\", ...) cannot be used in a 1d scan: the interval must be at least as long as the scan's"
    assert info.value.position == 8


def test_a_failing_symbol_does_not_affect_the_others(monkeypatch, caplog):
    panel = ramp_panel(200, bars=300)
    bad_first_close = float(panel.close[150, 0])
    real = formula_functions.ROW_KERNELS["EMA"]

    def flaky(x, n):
        if x[0] == bad_first_close:
            raise RuntimeError("boom")
        return real(x, n)

    flaky.__name__ = "EMA"
    monkeypatch.setitem(formula_functions.ROW_KERNELS, "EMA", flaky)
    with caplog.at_level(logging.WARNING, logger="candleflow.formula"):
        res = evaluate_scans([Scan("e", "close > ema(close, 10)"), Scan("u", "close > close[1]")], {"1d": panel})
    bad = res[150]
    assert bad.error == "scan 'e': EMA: boom"
    assert bad.matches and {m.scan for m in bad.matches} == {"u"}  # the other scan still ran
    for r in res[:150] + res[151:]:
        assert r.error is None
        assert {m.scan for m in r.matches} == {"e", "u"}
    assert any("S150" in rec.getMessage() and "EMA: boom" in rec.getMessage() for rec in caplog.records)


def test_everything_times_out_without_raising():
    # (a slow scan beside others: tests/test_hostile_formulas.py)
    res = evaluate_scans([Scan("u", "close > sma(close, 3)")], {"1d": ramp_panel(5)}, time_limit_s=1e-12)
    assert [r.error for r in res] == ["scan 'u' exceeded its time limit of 1e-12 s"] * 5


def test_notes_of_several_scans_are_listed():
    panel = ramp_panel(3, bars=60, short={0: 20})
    res = evaluate_scans([Scan("a", "close > sma(close, 30)"), Scan("b", "close > sma(close, 40)")], {"1d": panel})
    assert res[0].notes == [
        "scan 'a': not enough 1d history: needs 30 bars, has 20",
        "scan 'b': not enough 1d history: needs 40 bars, has 20",
    ]
    assert res[0].error is None


def test_errors_of_several_scans_are_joined(monkeypatch):
    panel = ramp_panel(3, bars=60)
    bad_first_close = float(panel.close[1, 0])
    real = formula_functions.ROW_KERNELS["EMA"]

    def flaky(x, n):
        if x[0] == bad_first_close:
            raise RuntimeError(f"boom {n}")
        return real(x, n)

    flaky.__name__ = "EMA"
    monkeypatch.setitem(formula_functions.ROW_KERNELS, "EMA", flaky)
    res = evaluate_scans([Scan("a", "close > ema(close, 3)"), Scan("b", "close > ema(close, 4)")], {"1d": panel})
    assert res[1].error == "scan 'a': EMA: boom 3; scan 'b': EMA: boom 4"
    assert res[1].notes == []
    assert res[0].error is None and res[2].error is None


def test_timeframe_history_is_checked_per_symbol():
    hourly = ramp_panel(3, bars=50, interval="1h", step=3600)
    daily = BarPanel("1d", ["S000", "S001"], np.array([T0 - 2 * DAY, T0 - DAY], dtype=np.int64),
                     *([np.array([[1.0, 2.0], [1.0, 2.0]])] * 5))
    res = evaluate_scans([Scan("h", 'close > tf("1d", close)', "1h")], {"1h": hourly, "1d": daily})
    assert res[0].error is None and res[0].notes == [] and len(res[0].matches) == 50
    assert res[2].notes == ["scan 'h': not enough 1d history: needs 2 bars, has 0"]
    assert res[2].error is None and res[2].matches == []


def test_gap_symbols_in_a_scan():
    panel = ramp_panel(3, bars=30)
    close = panel.close.copy()
    close[1, 10] = np.nan  # S001 has no bar on day 10
    present = np.isfinite(close)
    gap = BarPanel("1d", panel.symbols, panel.bar_start, close, close + 1, close - 1, close, panel.volume, present=present)
    res = evaluate_scans([Scan("up", "close > close[1]")], {"1d": gap})
    r = res[1]
    # the bar after the gap compares with the bar before it: still a rising series
    assert len(r.matches) == 28 and int(gap.bar_start[10]) not in [m.bar_start for m in r.matches]
    m = next(m for m in r.matches if m.bar_start == int(gap.bar_start[11]))
    assert m.values == {"close": 112.0, "close[1]": 110.0}


def test_shared_subexpressions_give_the_same_results():
    panel = synthetic_panel(150, 300, seed=3)
    scans = [
        Scan("a", "close > sma(close, 20) and rsi(14) < 60"),
        Scan("b", "crossover(ema(close, 12), ema(close, 26))"),
        Scan("c", "rank(pct_change(close, 20)) <= 10 and close > bb_middle(close, 20, 2)"),
    ]
    together = evaluate_scans(scans, {"1d": panel})
    for s in scans:
        alone = evaluate_scans([s], {"1d": panel})
        for r_all, r_one in zip(together, alone):
            assert [(m.bar_start, m.values) for m in r_all.matches if m.scan == s.name] == [
                (m.bar_start, m.values) for m in r_one.matches
            ]
    assert sum(len(r.matches) for r in together) > 0


def test_benchmark_shape():
    out = run_scan_workload(symbols=200, bars=300, runs=5)
    assert out["workload"] == "scan" and out["symbols"] == 200 and out["bars"] == 300
    assert out["formulas"] == 3 and out["runs"] == 5
    assert out["batch_seconds_median"] > 0 and out["per_symbol_ms_median"] > 0
    assert out["matches"] > 0
