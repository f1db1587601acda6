"""Runs that cover part of the data: a later run finishes the bars an earlier one left open, and
a run over some symbols ranks them across the whole universe.

The bar tests land minute files the way live files arrive (each run reads only the files landed
since the landing sensor's mark); the scan tests run the synthetic source per symbol, as
``candleflow retry-failed`` and the tracking reconciler do.
"""

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import inspect
from test_replay_incremental import run_landed

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.market.calendar import ExchangeSessions
from candleflow.resources import PipelineSettings
from tests.pipeline_fixtures import SESSION, prepared_store, run_pipeline, sqlite_instance
from tests.test_pipeline_dagster import backend  # noqa: F401 (fixture: Dagster + store per backend)

HEADER = "symbol,ts,open,high,low,close,volume\n"


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def land(folder, name: str, first: str, last: str) -> int:
    """AAA's 1m bars from ``first`` to ``last`` (UTC, both included) in one file, modified when its
    last minute ended (so later files are newer); returns that modification time in ns, the
    landing sensor's mark for it. Each close is the minute's UTC hour and minute (14:41 -> 14.41)."""
    start, end = datetime.fromisoformat(first), datetime.fromisoformat(last)
    rows = []
    while start <= end:
        close = round(start.hour + start.minute / 100, 2)
        rows.append(f"AAA,{start:%Y-%m-%dT%H:%M}:00Z,{close},{close + 0.005},{close - 0.005},{close},100\n")
        start += timedelta(minutes=1)
    path = folder / name
    path.write_text(HEADER + "".join(rows))
    landed_ns = (utc(last) + 60) * 10**9
    os.utime(path, ns=(landed_ns, landed_ns))
    return landed_ns


def flags(store, bars) -> dict[str, bool]:
    """``complete`` of AAA's stored bars named ``"interval time"`` (UTC), e.g. ``"5m 2024-03-08 14:40"``."""
    got = {}
    for key in bars:
        interval, moment = key.split(" ", 1)
        stored = store.read_candles(["AAA"], interval).set_index("bar_start")
        got[key] = bool(stored.loc[utc(moment), "complete"])
    return got


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def instance(tmp_path):
    with sqlite_instance(tmp_path) as dagster_instance:
        dagster_instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAA"])
        yield dagster_instance


def note_of(instance, run_id: str, asset: str) -> str | None:
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key.path == [asset] and "note" in materialization.metadata:
                return materialization.metadata["note"].value
    return None


def test_a_later_run_finishes_the_bars_an_earlier_run_left_open(store_url, landing, instance):
    store = prepared_store(store_url, ["AAA"])
    land(landing, "AAA.csv", "2024-03-08 14:30", "2024-03-08 14:41")
    assert run_landed(instance, store_url, landing, symbols=["AAA"]).success
    assert flags(store, ["5m 2024-03-08 14:40", "15m 2024-03-08 14:30"]) == {
        "5m 2024-03-08 14:40": False, "15m 2024-03-08 14:30": False}  # "now" is 14:42

    # no trade from 14:42 to 14:44; the next file brings 14:45-14:57, so "now" is 14:58
    since = land(landing, "AAA_2.csv", "2024-03-08 14:45", "2024-03-08 14:57")
    result = run_landed(instance, store_url, landing, since, symbols=["AAA"])

    assert result.success
    expected = {"5m 2024-03-08 14:40": True, "15m 2024-03-08 14:30": True,  # ended 14:45
                "5m 2024-03-08 14:55": False, "30m 2024-03-08 14:30": False, "1h 2024-03-08 14:30": False}
    assert flags(store, expected) == expected
    assert note_of(instance, result.run_id, "derived_bars") == (
        "AAA: bars left open by earlier runs, now complete: 2")


def test_the_last_bars_of_a_session_finish_in_the_next_session(store_url, landing, instance, tmp_path):
    """AAA's last trade of 2024-03-08 is at 15:54 New York (20:54Z); 2024-03-11 opens at 13:30Z
    (DST). A 5m scan reads tf("15m", close) at 09:45 New York of 2024-03-11: that day's 09:30 bar,
    which a run with "now" 09:44 left open (no trade at 09:44), and the run with 09:45 finished."""
    scans = tmp_path / "scans.yaml"
    scans.write_text('scans:\n  - {name: last_15m, formula: \'tf("15m", close) > 0\', interval: 5m}\n')
    settings = PipelineSettings(scans_file=str(scans))
    store = prepared_store(store_url, ["AAA"])
    land(landing, "AAA.csv", "2024-03-08 20:30", "2024-03-08 20:54")
    assert run_landed(instance, store_url, landing, symbols=["AAA"], settings=settings).success
    last_bars = ["15m 2024-03-08 20:45", "30m 2024-03-08 20:30", "1h 2024-03-08 20:30", "1d 2024-03-08 14:30"]
    assert set(flags(store, last_bars).values()) == {False}  # "now" is 20:55, the close 21:00

    since = land(landing, "AAA_2.csv", "2024-03-11 13:30", "2024-03-11 13:43")
    assert run_landed(instance, store_url, landing, since, symbols=["AAA"], settings=settings).success
    assert set(flags(store, last_bars).values()) == {True}
    assert flags(store, ["15m 2024-03-11 13:30"]) == {"15m 2024-03-11 13:30": False}

    since = land(landing, "AAA_3.csv", "2024-03-11 13:45", "2024-03-11 13:45")
    assert run_landed(instance, store_url, landing, since, symbols=["AAA"], settings=settings).success
    assert flags(store, ["15m 2024-03-11 13:30"]) == {"15m 2024-03-11 13:30": True}
    signals = store.read_signals().set_index("bar_start")
    assert signals.loc[utc("2024-03-11 13:45"), "term_values"] == {'tf("15m", close)': 13.43}
    assert signals.loc[utc("2024-03-11 13:30"), "term_values"] == {'tf("15m", close)': 20.54}


def open_bar(symbol: str, moment: str, complete: bool = False) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [symbol], "bar_start": [utc(moment)], "open": 10.0, "high": 11.0,
                         "low": 9.0, "close": 10.5, "volume": 100.0, "minutes": 1, "complete": complete})


def test_store_finishes_only_the_open_bars_whose_window_ended(store):
    """2024-11-29 closes early, at 18:00Z: the 1h bar of 17:30Z and the day end there."""
    for interval, moment, complete in [("5m", "2024-11-29 17:45", True), ("5m", "2024-11-29 17:50", False),
                                       ("5m", "2024-11-29 17:55", False), ("1h", "2024-11-29 17:30", False),
                                       ("1d", "2024-11-29 14:30", False)]:
        store.write_candles(open_bar("AAA", moment, complete), interval)
    store.write_candles(open_bar("BBB", "2024-11-29 17:50"), "5m")
    calendar = ExchangeSessions()
    indexes = {i["name"]: i["column_names"] for i in inspect(store.engine).get_indexes("candles")}
    assert indexes["idx_candles_incomplete"] == ["symbol", "interval", "bar_start"]

    assert store.complete_ended_bars(["AAA"], utc("2024-11-29 17:58"), calendar) == {"AAA": 1}
    assert flags(store, ["5m 2024-11-29 17:50", "5m 2024-11-29 17:55", "1h 2024-11-29 17:30"]) == {
        "5m 2024-11-29 17:50": True, "5m 2024-11-29 17:55": False, "1h 2024-11-29 17:30": False}
    assert store.complete_ended_bars(["AAA"], utc("2024-11-29 18:00"), calendar) == {"AAA": 3}
    assert store.complete_ended_bars(["AAA"], utc("2024-11-29 18:00"), calendar) == {}
    assert store.read_candles(["AAA"], "5m")["complete"].all()
    assert store.read_candles(["AAA"], "1d")["complete"].all()
    assert not store.read_candles(["BBB"], "5m")["complete"].any()  # not asked for


TOP_CLOSE = [("universe of the instance", "{name: top_close, formula: 'rank(close) <= 1'}",
              ["IBM", "JPM", "KO", "XOM"]),
             ("universe list", "{name: top_close, formula: 'rank(close) <= 1', universe: [IBM, KO, XOM]}",
              ["IBM", "KO", "XOM"])]


@pytest.mark.parametrize(("scan", "ranked"), [case[1:] for case in TOP_CLOSE],
                         ids=[case[0] for case in TOP_CLOSE])
def test_per_symbol_runs_rank_across_the_whole_universe(backend, tmp_path, scan, ranked):  # noqa: F811
    instance, store_url = backend
    universe = ["IBM", "JPM", "KO", "XOM"]
    (tmp_path / "scans.yaml").write_text(f"scans:\n  - {scan}\n")
    settings = PipelineSettings(scans_file=str(tmp_path / "scans.yaml"))
    store = prepared_store(store_url, universe)
    assert run_pipeline(instance, store_url, universe, settings=settings).success
    closes = store.read_candles(ranked, "1d").pivot(index="bar_start", columns="symbol", values="close")
    top = closes.iloc[-1].idxmax()
    other = next(s for s in ranked if s != top)
    assert store.read_signals()["symbol"].tolist() == [top]

    for symbol in (other, top):  # what retry-failed and the reconciler launch
        assert run_pipeline(instance, store_url, [symbol], settings=settings).success

    signals = store.read_signals()
    assert signals[["symbol", "bar_start"]].values.tolist() == [[top, int(closes.index[-1])]]
    assert closes.index[-1] == utc(f"{SESSION} 14:30")
