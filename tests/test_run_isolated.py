"""A stage in which every symbol fails still ends normally: failures recorded, checks computed."""

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline import stage_functions
from candleflow.pipeline.result import StageResult, run_isolated
from candleflow.pipeline.scan_config import load_scans
from candleflow.pipeline.stages import PipelineContext, run_stages
from candleflow.pipeline.window import window_between
from candleflow.sources.synthetic import SyntheticSource
from candleflow.store import CandleStore
from tests.pipeline_fixtures import SESSION

SYMBOLS = ["AAA", "BBB"]


def test_every_symbol_failing_gives_the_shape_of_an_empty_batch():
    def work(batch):
        if batch:
            raise ZeroDivisionError("boom")
        return pd.DataFrame({"symbol": [], "bar_start": []})

    result = StageResult("derived_bars")
    frame = run_isolated(SYMBOLS, work, result)
    assert frame.empty and list(frame.columns) == ["symbol", "bar_start"]
    assert result.failed == {s: "ZeroDivisionError: boom" for s in SYMBOLS}


def test_derived_bars_with_every_symbol_failing(tmp_path, monkeypatch):
    derive_bars = stage_functions.derive_bars

    def breaks_on_any_bars(bars, *args):
        if len(bars):
            raise ValueError("cannot derive")
        return derive_bars(bars, *args)

    monkeypatch.setattr(stage_functions, "derive_bars", breaks_on_any_bars)
    store = CandleStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    calendar = ExchangeSessions()
    ctx = PipelineContext(store, SyntheticSource(7, "1m", calendar), calendar, DEFAULT_INDICATORS,
                          load_scans(None))
    ingest, derived = run_stages(ctx, ["raw_candles", "derived_bars"], SYMBOLS,
                                 window_between(calendar, SESSION, SESSION))
    assert ingest.succeeded == SYMBOLS
    assert derived.succeeded == [] and derived.failed == {s: "ValueError: cannot derive" for s in SYMBOLS}
    assert {check.name: check.passed for check in derived.checks} == {
        "ohlc_consistent": True, "aligned_bars": True, "no_unexpected_gaps": True}
    for interval in ("5m", "1h", "1d"):
        assert store.read_candles(SYMBOLS, interval).empty
    store.dispose()
