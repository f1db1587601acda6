"""Hostile formulas: a scan that takes too long is stopped at its time limit, fails only the
symbols of the block it ran out on, and never costs the limit once per symbol."""

import pickle
import time

import numpy as np
import pytest

from candleflow.formula import FormulaError, Scan, ScanTimeout, evaluate_scans
from candleflow.formula import functions as formula_functions
from candleflow.formula import kernels
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.scan_config import ConfiguredScan
from candleflow.pipeline.stages import STAGES, PipelineContext, run_stages
from candleflow.pipeline.window import window_between
from candleflow.sources.synthetic import SyntheticSource
from tests.pipeline_fixtures import SESSION, prepared_store, table
from tests.test_formula_engine import ramp_panel

LIMIT_S = 0.5
SLEEP_S = 0.6  # longer than the limit: the step that sleeps always runs past it


def slow_ema_for(monkeypatch, first_close: float | None = None) -> list[float]:
    """Make TA-Lib's EMA of the scans sleep past the limit on the series starting with
    ``first_close`` (every series if None). Returns the first values of the series it slept on."""
    real = formula_functions.ROW_KERNELS["EMA"]
    slept = []

    def ema(x, n):
        if first_close is None or x[0] == first_close:
            slept.append(float(x[0]))
            time.sleep(SLEEP_S)
        return real(x, n)

    ema.__name__ = "EMA"
    monkeypatch.setitem(formula_functions.ROW_KERNELS, "EMA", ema)
    return slept


def scans_of(result, name):
    return [m for m in result.matches if m.scan == name]


def test_a_slow_scan_fails_the_block_it_ran_out_on_and_nothing_else(monkeypatch):
    """200 symbols are two blocks (128 + 72). The slow symbol S150 is in the second: that block's
    symbols fail the slow scan at once (no retry one by one), the first block and the other scan
    keep their matches."""
    panel = ramp_panel(200, bars=300)
    slept = slow_ema_for(monkeypatch, float(panel.close[150, 0]))
    res = evaluate_scans([Scan("slow", "close > ema(close, 10)"), Scan("up", "close > close[1]")], {"1d": panel},
                         time_limit_s=LIMIT_S)
    assert slept == [float(panel.close[150, 0])]  # evaluated once, not again symbol by symbol
    for r in res[:128]:
        assert r.error is None
        assert len(scans_of(r, "slow")) == 300 - 9 and len(scans_of(r, "up")) == 299
    for r in res[128:]:
        assert r.error == "scan 'slow' exceeded its time limit of 0.5 s"
        assert scans_of(r, "slow") == [] and len(scans_of(r, "up")) == 299


def test_time_spent_on_a_cross_section_counts(monkeypatch):
    """A cross section needs its argument for every symbol of the panel; computing it is part of
    the block that asked for it. When it runs out, every symbol fails that scan, and the later
    blocks do not compute it again."""
    panel = ramp_panel(300, bars=60)
    slept = slow_ema_for(monkeypatch, float(panel.close[150, 0]))
    res = evaluate_scans([Scan("z", "zscore(ema(close, 5)) > 0"), Scan("up", "close > close[1]")], {"1d": panel},
                         time_limit_s=LIMIT_S)
    assert slept == [float(panel.close[150, 0])]
    assert [r.error for r in res] == ["scan 'z' exceeded its time limit of 0.5 s"] * 300
    assert all(scans_of(r, "z") == [] and len(scans_of(r, "up")) == 59 for r in res)


@pytest.mark.parametrize("kernel", [kernels.cs_rank, kernels.cs_percentile, kernels.cs_zscore,
                                    lambda x, tick: kernels.cs_top_k(x, 5, tick)],
                         ids=["rank", "percentile", "zscore", "top_k"])
@pytest.mark.parametrize("symbols", [200, 400], ids=["one thread", "two threads"])
def test_cross_section_kernels_check_the_deadline_between_chunks(kernel, symbols):
    """The kernels work through the bars in chunks and call ``tick`` before each one: a tick that
    raises (a passed deadline) stops them. 400 x 1000 cells are split over two threads."""
    x = np.random.default_rng(5).standard_normal((symbols, 1000))
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) >= 2:
            raise ScanTimeout("k", 1.0)

    with pytest.raises(ScanTimeout):
        kernel(x, tick)
    n_chunks = -(-1000 // (kernels.CHUNK_CELLS // symbols))
    assert 2 <= len(ticks) < n_chunks


def test_scan_timeout_is_a_formula_error_without_a_position():
    err = ScanTimeout("slow", 2.0)
    assert isinstance(err, FormulaError)
    assert str(err) == err.message == "scan 'slow' exceeded its time limit of 2 s"
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.scan, back.limit_s) == (ScanTimeout, str(err), "slow", 2.0)


def test_the_pipeline_passes_its_limit_and_keeps_the_other_symbols(store_url, monkeypatch):
    """scan_signals with the configured limit: AAA's slow scan runs out, so AAA fails with the
    message and keeps the signals it had; BBB's are written."""
    store = prepared_store(store_url, ["AAA", "BBB"])
    calendar = ExchangeSessions()
    scans = [ConfiguredScan("slow", "close > ema(close, 5)", "1d", universe=("AAA",)),
             ConfiguredScan("fast", "close > 0", "1d")]
    ctx = PipelineContext(store, SyntheticSource(7, "1m", calendar), calendar, DEFAULT_INDICATORS, scans)
    window = window_between(calendar, SESSION, SESSION)
    first = run_stages(ctx, STAGES, ["AAA", "BBB"], window)[-1]
    assert first.failed == {} and first.succeeded == ["AAA", "BBB"]
    before = table(store, "signals")
    assert set(zip(before["scan"], before["symbol"])) >= {("fast", "AAA"), ("fast", "BBB")}
    store.replace_signals(before[:0], ["fast"], ["BBB"], 0)  # BBB's must be written again

    ctx.scan_time_limit_s = LIMIT_S
    slow_ema_for(monkeypatch)
    second = run_stages(ctx, STAGES, ["AAA", "BBB"], window)[-1]
    assert second.failed == {"AAA": "AAA: scan 'slow' exceeded its time limit of 0.5 s"}
    assert second.succeeded == ["BBB"]
    after = table(store, "signals")
    assert after.equals(before)
    store.dispose()
