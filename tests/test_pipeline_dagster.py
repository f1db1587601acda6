"""The asset graph materialized with Dagster's own execution on SQLite and on Postgres.

Both Dagster's storage and the domain store run on each backend. Reference values come from
pandas and TA-Lib applied in the test to what the store holds.
"""

import logging

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import talib

from candleflow.resources import LandingFolderCandles, PipelineSettings
from tests.pipeline_fixtures import (
    ASSETS, materialized, postgres_instance_overrides, prepared_store, run_pipeline,
    sqlite_instance,
)

SYMBOLS = ["AAPL", "AMZN", "BRK.B", "JPM", "KO", "MSFT", "NVDA", "XOM"]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """(Dagster instance, domain store URL) on one backend."""
    if request.param == "sqlite":
        with sqlite_instance(tmp_path) as instance:
            yield instance, f"sqlite:///{tmp_path / 'store.db'}"
    else:
        dagster_db = request.getfixturevalue("postgres_database")
        store_url = request.getfixturevalue("postgres_url")
        with dg.instance_for_test(overrides=postgres_instance_overrides(dagster_db)) as instance:
            yield instance, store_url


def error_lines(instance, run_id: str) -> list[str]:
    """The run's ERROR log lines written by candleflow (the UI's run log, filtered to errors)."""
    return [entry.user_message for entry in instance.all_logs(run_id)
            if entry.level == logging.ERROR and entry.dagster_event is None]


def test_universe_run_materializes_every_symbol(backend):
    instance, store_url = backend
    store = prepared_store(store_url, SYMBOLS)
    result = run_pipeline(instance, store_url, SYMBOLS)
    assert result.success
    for asset in ASSETS:
        assert materialized(instance, asset) == set(SYMBOLS), asset
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"valid_candles": True, "ohlc_consistent": True, "aligned_bars": True,
                      "no_unexpected_gaps": True, "symbols_evaluated": True}

    minutes = store.read_candles(SYMBOLS, "1m")
    assert minutes.groupby("symbol").size().between(370, 390).all()  # 390 minus missing minutes
    # 5m bars against pandas: floor each minute to the 5-minute grid from the 09:30 open.
    reference = (minutes.assign(bucket=minutes["bar_start"] - (minutes["bar_start"] - 1709908200) % 300)
                 .groupby(["symbol", "bucket"]).agg(open=("open", "first"), high=("high", "max"),
                                                    low=("low", "min"), close=("close", "last"),
                                                    volume=("volume", "sum"), minutes=("open", "size")))
    five = store.read_candles(SYMBOLS, "5m").set_index(["symbol", "bar_start"])
    np.testing.assert_allclose(five[["open", "high", "low", "close", "volume", "minutes"]].to_numpy(),
                               reference.to_numpy())
    daily = store.read_candles(SYMBOLS, "1d")
    today = daily[daily["bar_start"] == 1709908200].set_index("symbol")
    assert today["minutes"].to_dict() == minutes.groupby("symbol").size().to_dict()

    # Indicator values against TA-Lib on the stored daily closes.
    indicators = store.read_indicators(SYMBOLS, "1d", start=1709908200)
    for symbol in SYMBOLS:
        closes = daily.loc[daily["symbol"] == symbol, "close"].to_numpy()
        sma50 = indicators[(indicators["symbol"] == symbol) & (indicators["name"] == "sma_50")]
        assert sma50["value"].tolist() == pytest.approx([talib.SMA(closes, 50)[-1]], rel=1e-12)

    # top_momentum_20d: the 5 symbols with the highest 20-session return, computed with pandas.
    closes = daily.pivot(index="bar_start", columns="symbol", values="close")
    expected = set(closes.pct_change(20, fill_method=None).iloc[-1].nlargest(5).index)
    signals = store.read_signals()
    momentum = signals[signals["scan"] == "top_momentum_20d"]
    assert set(momentum["symbol"]) == expected
    assert set(momentum["bar_start"]) == {1709908200}


def test_rerun_is_idempotent(backend):
    instance, store_url = backend
    store = prepared_store(store_url, SYMBOLS[:3])
    run_pipeline(instance, store_url, SYMBOLS[:3])
    counts = {t: store.count_rows(t) for t in ("candles", "indicator_values", "signals")}
    snapshot = store.read_candles(SYMBOLS[:3], "5m")
    run_pipeline(instance, store_url, SYMBOLS[:3])
    assert {t: store.count_rows(t) for t in counts} == counts
    pd.testing.assert_frame_equal(store.read_candles(SYMBOLS[:3], "5m"), snapshot)


def test_bad_symbol_fails_alone(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    header = "symbol,ts,open,high,low,close,volume\n"
    for symbol in ("AAA", "BBB", "CCC"):
        rows = [f"{symbol},2024-03-08T{14 + (30 + m) // 60:02d}:{(30 + m) % 60:02d}:00Z,10,11,9,10.5,100"
                for m in range(30)]
        if symbol == "BBB":
            rows[7] = "BBB,2024-03-08T14:37:00Z,10,8,9,10.5,100"  # high below low
        (landing / f"{symbol}.csv").write_text(header + "\n".join(rows) + "\n")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, ["AAA", "BBB", "CCC"])
    before = store.read_candles(["BBB"], "1d")
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["AAA", "BBB", "CCC"],
                              source=LandingFolderCandles(landing_dir=str(landing)))
        assert result.success
        for asset in ASSETS:
            assert materialized(instance, asset) == {"AAA", "CCC"}, asset
        check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "valid_candles")
        assert not check.passed
        assert check.metadata["failures"].value == {
            "BBB": "BBB at 2024-03-08T14:37:00Z in BBB.csv: high below low (high=8.0, low=9.0)"}
        assert error_lines(instance, result.run_id) == [
            "raw_candles failed for BBB: BBB at 2024-03-08T14:37:00Z in BBB.csv: high below low (high=8.0, low=9.0)"]
    assert store.read_candles(["BBB"], "1m").empty
    pd.testing.assert_frame_equal(store.read_candles(["BBB"], "1d"), before)
    assert len(store.read_candles(["AAA", "CCC"], "1m")) == 60


def test_every_symbol_failing_fails_the_run(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["ZZZ"], raise_on_error=False,
                              source=LandingFolderCandles(landing_dir=str(landing)))
        assert not result.success
        failure = result.failure_data_for_node("market_data_pipeline")
        assert f"no landed file for ZZZ in {landing}" in failure.user_failure_data.description
        assert materialized(instance, "raw_candles") == set()
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE
        assert any(line.startswith("raw_candles failed for ZZZ: ")
                   for line in error_lines(instance, result.run_id))


def test_scan_restricted_to_its_universe(tmp_path):
    scans = tmp_path / "scans.yaml"
    scans.write_text("""scans:
  - {name: best_of_two, formula: "rank(pct_change(close, 20)) <= 1", universe: [JPM, XOM]}
  - {name: everyone, formula: "close > 0"}
""")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, SYMBOLS)
    with sqlite_instance(tmp_path) as instance:
        run_pipeline(instance, store_url, SYMBOLS, settings=PipelineSettings(scans_file=str(scans)))
    daily = store.read_candles(["JPM", "XOM"], "1d").pivot(index="bar_start", columns="symbol", values="close")
    best = daily.pct_change(20, fill_method=None).iloc[-1].idxmax()
    signals = store.read_signals()
    assert signals.loc[signals["scan"] == "best_of_two", "symbol"].tolist() == [best]
    assert sorted(signals.loc[signals["scan"] == "everyone", "symbol"]) == sorted(SYMBOLS)
