"""A session replayed minute by minute through the landing folder and the market_data job.

Each minute is one run that reads only that minute's files. The bars are checked while the session
runs (completeness, minute counts) and, at the end, every stored bar, indicator value and signal
must equal what one run over all the same minutes stores.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest
from pipeline_fixtures import SESSION, prepared_store, sqlite_instance
from test_bars import reference

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.definitions import defs
from candleflow.defs.market_data.landing import covering_range
from candleflow.market.calendar import ExchangeSessions
from candleflow.resources import LandingFolderCandles, PipelineSettings, StoreResource
from candleflow.sources.replay import replay, session_minutes

SYMBOLS = ["AAA", "BBB", "CCC"]
CALENDAR = ExchangeSessions()
OPEN = int(CALENDAR.sessions(SESSION, SESSION)["open"].iloc[0])  # 09:30 New York


def at(hour: int, minute: int) -> int:
    return OPEN + ((hour - 9) * 60 + minute - 30) * 60


def run_landed(instance, store_url: str, landing, landed_since_ns: int = 0, symbols=SYMBOLS,
               settings: PipelineSettings | None = None):
    return defs.resolve_job_def("market_data").execute_in_process(
        instance=instance, tags=partition_range_tags(symbols),
        resources={"store": StoreResource(url=store_url), "settings": settings or PipelineSettings(),
                   "candle_source": LandingFolderCandles(landing_dir=str(landing),
                                                         landed_since_ns=landed_since_ns)})


def materializations(instance, run_id: str) -> list[dg.AssetMaterialization]:
    return [record.asset_materialization for record in
            instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]


def bars(store, interval: str) -> pd.DataFrame:
    return store.read_candles(SYMBOLS, interval).set_index(["symbol", "bar_start"])


@pytest.fixture
def minutes():
    every = session_minutes(SYMBOLS, SESSION, CALENDAR)
    no_trade = (every["symbol"] == "BBB") & (every["bar_start"] == at(10, 3))  # no file for BBB then
    return every[(every["bar_start"] < at(10, 15)) & ~no_trade].reset_index(drop=True)


def test_replay_minute_by_minute_equals_one_run(tmp_path, minutes):
    store = prepared_store(f"sqlite:///{tmp_path / 'replayed.db'}", SYMBOLS)
    one_shot = prepared_store(f"sqlite:///{tmp_path / 'one-shot.db'}", SYMBOLS)
    seen = {}
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, SYMBOLS)
        earlier = minutes[minutes["bar_start"] < at(9, 58)]
        for landed in replay(earlier, tmp_path / "landing", speed=None):
            pass  # the session so far arrives at once: one run
        assert run_landed(instance, store.url, tmp_path / "landing").success
        for landed in replay(minutes[minutes["bar_start"] >= at(9, 58)], tmp_path / "landing", None):
            symbols = covering_range(SYMBOLS, set(landed.symbols))  # as the sensor does
            result = run_landed(instance, store.url, tmp_path / "landing", landed.landed_since_ns,
                                symbols)
            raw = {m.partition: m.metadata["rows"].value for m in materializations(instance, result.run_id)
                   if m.asset_key.path == ["raw_candles"]}
            # that minute's file only; a symbol without one (no trade) has nothing new
            assert result.success and raw == {s: int(s in landed.symbols) for s in symbols}
            clock = datetime.fromtimestamp(landed.bar_start + 60, UTC).strftime("%H:%M")
            seen[clock] = {interval: bars(store, interval) for interval in ("5m", "15m", "1h", "1d")}
        assert run_landed(instance, one_shot.url, tmp_path / "landing").success

    def bar(clock: str, interval: str, hour: int, minute: int):
        return seen[clock][interval].loc[("AAA", at(hour, minute))]

    assert not bar("15:04", "5m", 10, 0)["complete"]  # 10:00-10:05 while minute 10:03 is the last
    assert bar("15:05", "5m", 10, 0)["complete"] and bar("15:10", "5m", 10, 5)["complete"]
    assert not bar("15:10", "15m", 10, 0)["complete"] and bar("15:15", "15m", 10, 0)["complete"]
    aaa = minutes[minutes["symbol"] == "AAA"]
    for clock, frames in seen.items():
        now = int(datetime.strptime(f"{SESSION} {clock}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp())
        for interval in ("1h", "1d"):
            latest = frames[interval].loc["AAA"].iloc[-1]
            assert not latest["complete"]
            assert latest["minutes"] == (aaa["bar_start"].between(latest.name, now - 1)).sum()

    for interval in ("5m", "15m", "30m", "1h", "1d"):
        replayed, whole = store.read_candles(SYMBOLS, interval), one_shot.read_candles(SYMBOLS, interval)
        pd.testing.assert_frame_equal(replayed, whole, obj=interval)
        today = replayed[replayed["bar_start"] >= OPEN].reset_index(drop=True)
        expected = reference(minutes, interval)
        pd.testing.assert_frame_equal(today.drop(columns="complete"), expected.drop(columns="complete"))
        pd.testing.assert_frame_equal(store.read_indicators(SYMBOLS, interval),
                                      one_shot.read_indicators(SYMBOLS, interval), obj=interval)
    daily_closes = store.read_candles(["AAA"], "1d")["close"]
    sma_20 = store.read_indicators(["AAA"], "1d", OPEN).set_index("name").loc["sma_20", "value"]
    assert sma_20 == pytest.approx(daily_closes.iloc[-20:].mean(), rel=1e-12)
    assert daily_closes.iloc[-1] == aaa["close"].iloc[-1]  # follows the latest minute
    pd.testing.assert_frame_equal(store.read_signals(), one_shot.read_signals())
