"""Bars outside the sessions, extended-hours minutes, huge values and long daily history.

Bars outside every session are refused per symbol before anything of it is written; pre-market
and after-hours minutes are stored but kept out of the regular-session bars; a stored bar never
fails its symbol's later stages (``candleflow bars delete`` removes one and what was built from it);
values that could overflow a sum are refused; and the calendar covers long daily history.
"""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from pipeline_fixtures import materialized, sqlite_instance

from candleflow.cli import main
from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.definitions import defs
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.checks import ohlc_consistent
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.scan_config import load_scans
from candleflow.pipeline.stages import STAGES, PipelineContext, run_stages
from candleflow.pipeline.window import Window, history_window, window_between, window_of_bars
from candleflow.resources import LandingFolderCandles, PipelineSettings, StoreResource
from candleflow.sources.files import FileSource
from candleflow.sources.synthetic import SyntheticSource
from candleflow.store import CandleStore

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR = ExchangeSessions()
THURSDAY, FRIDAY, SUNDAY = date(2024, 3, 7), date(2024, 3, 8), date(2024, 3, 10)
CSV_HEADER = "symbol,ts,open,high,low,close,volume\n"
TABLES = ("candles", "indicator_values", "signals")


def ny(day: date, hour: int, minute: int) -> int:
    return int(datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).timestamp())


def session_start(day: date, count: int) -> list[int]:
    """The first ``count`` minutes of the session of ``day`` (09:30 New York on)."""
    return [ny(day, 9, 30) + 60 * i for i in range(count)]


def land(folder, symbol: str, starts: list[int], volume: float = 100.0) -> None:
    folder.mkdir(exist_ok=True)
    lines = [f"{symbol},{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ},10,11,9,10.5,{volume!r}\n"
             for t in starts]
    (folder / f"{symbol}.csv").write_text(CSV_HEADER + "".join(lines))


def run(store: CandleStore, source, symbols: list[str], window: Window | None = None):
    ctx = PipelineContext(store, source, CALENDAR, DEFAULT_INDICATORS, load_scans(None))
    return {result.stage: result for result in run_stages(ctx, STAGES, symbols, window)}


def rows(store: CandleStore, table: str, symbol: str) -> pd.DataFrame:
    with store.engine.connect() as conn:
        frame = pd.read_sql_query(f"SELECT * FROM {table} WHERE symbol = '{symbol}'", conn)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def bar_starts(store: CandleStore, symbol: str, interval: str) -> list[int]:
    return store.read_candles([symbol], interval)["bar_start"].tolist()


def failures(results) -> dict[str, dict[str, str]]:
    return {stage: result.failed for stage, result in results.items() if result.failed}


# -- item 2: a bar outside every session is refused for its symbol alone --------------------------


def test_a_bar_outside_every_session_fails_only_its_symbol(store, tmp_path):
    good = [f"G{i:02d}" for i in range(1, 17)]
    for symbol in good:
        land(tmp_path, symbol, session_start(FRIDAY, 10))
    land(tmp_path, "OLD", [0])  # 1970-01-01T00:00:00Z
    land(tmp_path, "SUN", [ny(SUNDAY, 11, 0)])
    earlier = pd.DataFrame({"symbol": "OLD", "bar_start": session_start(THURSDAY, 1), "open": 10.0,
                            "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0, "minutes": 1,
                            "complete": True})
    store.write_candles(earlier, "1m")
    before = rows(store, "candles", "OLD")

    results = run(store, FileSource(tmp_path), [*good, "OLD", "SUN"])

    assert failures(results) == {"raw_candles": {
        "OLD": "OLD at 1970-01-01T00:00:00Z in OLD.csv: outside every session (bar_start=0)",
        "SUN": "SUN at 2024-03-10T15:00:00Z in SUN.csv: outside every session (bar_start=1710082800)"}}
    assert {stage: r.succeeded for stage, r in results.items() if stage != "raw_candles"} == {
        stage: good for stage in STAGES[1:]}
    pd.testing.assert_frame_equal(rows(store, "candles", "OLD"), before)
    assert rows(store, "candles", "SUN").empty
    for symbol in good:
        assert bar_starts(store, symbol, "1m") == session_start(FRIDAY, 10)
        assert bar_starts(store, symbol, "5m") == [ny(FRIDAY, 9, 30), ny(FRIDAY, 9, 35)]
        assert bar_starts(store, symbol, "1d") == [ny(FRIDAY, 9, 30)]
    assert all(check.passed for check in results["derived_bars"].checks)


def test_a_landed_1970_bar_fails_only_its_symbol_in_a_dagster_run(tmp_path):
    good = [f"G{i:02d}" for i in range(1, 17)]
    for symbol in good:
        land(tmp_path / "landing", symbol, session_start(FRIDAY, 10))
    land(tmp_path / "landing", "OLD", [0])
    symbols = [*good, "OLD"]
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, symbols)
        result = defs.resolve_job_def("market_data").execute_in_process(
            instance=instance, tags=partition_range_tags(symbols),
            resources={"store": StoreResource(url=store_url), "settings": PipelineSettings(),
                       "candle_source": LandingFolderCandles(landing_dir=str(tmp_path / "landing"))})
        assert result.success
        for asset in ("raw_candles", "derived_bars", "indicators", "scan_signals"):
            assert materialized(instance, asset) == set(good), asset
        check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "valid_candles")
        assert check.metadata["failures"].value == {
            "OLD": "OLD at 1970-01-01T00:00:00Z in OLD.csv: outside every session (bar_start=0)"}
    store = CandleStore(store_url)
    assert store.read_candles(["OLD"], "1m").empty
    assert len(store.read_candles(good, "5m")) == 2 * len(good)
    store.dispose()


def test_window_of_bars_holds_extended_hours_and_the_calendar_start():
    assert window_of_bars(CALENDAR, ny(FRIDAY, 16, 30), ny(FRIDAY, 16, 30)).describe() == "2024-03-08"
    assert window_of_bars(CALENDAR, ny(THURSDAY, 19, 59), ny(FRIDAY, 4, 0)).describe() == (
        "2024-03-07..2024-03-08")
    early = ExchangeSessions("XNYS", start=date(2024, 3, 8))  # the bar's session is the first one
    assert window_of_bars(early, ny(FRIDAY, 9, 30), ny(FRIDAY, 9, 30)).describe() == "2024-03-08"


# -- item 10: extended hours are stored, kept out of the session's bars, and never fail a symbol --


def test_extended_hours_minutes_are_stored_but_not_derived(store, tmp_path):
    extended = [ny(THURSDAY, 4, 0), ny(THURSDAY, 9, 29), ny(THURSDAY, 16, 0), ny(THURSDAY, 19, 59)]
    thursday = sorted([*extended, *session_start(THURSDAY, 10)])
    land(tmp_path, "AAA", thursday + session_start(FRIDAY, 10))
    land(tmp_path, "BBB", session_start(FRIDAY, 5))

    results = run(store, FileSource(tmp_path), ["AAA", "BBB"])

    assert failures(results) == {}
    assert all(check.passed for r in results.values() for check in r.checks)
    assert bar_starts(store, "AAA", "1m") == thursday + session_start(FRIDAY, 10)
    assert bar_starts(store, "AAA", "5m") == [ny(d, 9, m) for d in (THURSDAY, FRIDAY) for m in (30, 35)]
    daily = store.read_candles(["AAA"], "1d")
    assert daily[["bar_start", "minutes"]].values.tolist() == [[ny(THURSDAY, 9, 30), 10],
                                                               [ny(FRIDAY, 9, 30), 10]]


def test_a_minute_at_or_past_the_extended_close_is_outside_every_session(store, tmp_path):
    land(tmp_path, "AAA", [ny(FRIDAY, 3, 59)])
    land(tmp_path, "BBB", [ny(FRIDAY, 20, 0)])
    land(tmp_path, "CCC", session_start(FRIDAY, 1))
    results = run(store, FileSource(tmp_path), ["AAA", "BBB", "CCC"])
    assert failures(results) == {"raw_candles": {
        "AAA": "AAA at 2024-03-08T08:59:00Z in AAA.csv: outside every session (bar_start=1709888340)",
        "BBB": "BBB at 2024-03-09T01:00:00Z in BBB.csv: outside every session (bar_start=1709946000)"}}


def test_only_an_after_hours_minute_arriving_has_nothing_to_rederive(store, tmp_path):
    land(tmp_path / "session", "AAA", session_start(FRIDAY, 10))
    assert failures(run(store, FileSource(tmp_path / "session"), ["AAA"])) == {}
    before = rows(store, "candles", "AAA")

    land(tmp_path / "later", "AAA", [ny(FRIDAY, 16, 30)])
    results = run(store, FileSource(tmp_path / "later"), ["AAA"])

    assert failures(results) == {}
    assert {stage: r.succeeded for stage, r in results.items()} == dict.fromkeys(STAGES, ["AAA"])
    assert results["raw_candles"].rows == {"AAA": 1} and results["derived_bars"].rows == {}
    assert bar_starts(store, "AAA", "1m") == [*session_start(FRIDAY, 10), ny(FRIDAY, 16, 30)]

    def derived(frame):  # prices and minute counts; whether a bar is complete follows the clock
        return frame.query("interval != '1m'").drop(columns="complete").reset_index(drop=True)

    pd.testing.assert_frame_equal(derived(rows(store, "candles", "AAA")), derived(before))


def test_a_stored_close_print_is_ignored_and_bars_delete_removes_it(store_url, tmp_path, monkeypatch,
                                                                    capsys):
    store = CandleStore(store_url)
    store.create_schema()
    legacy = pd.DataFrame({"symbol": "AAA", "bar_start": [ny(THURSDAY, 16, 0)], "open": 10.0,
                           "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0, "minutes": 1,
                           "complete": True})
    store.write_candles(legacy, "1m")  # stored before bars outside the session were refused
    land(tmp_path, "AAA", session_start(THURSDAY, 10) + session_start(FRIDAY, 10))

    results = run(store, FileSource(tmp_path), ["AAA"])
    assert failures(results) == {}
    assert bar_starts(store, "AAA", "5m") == [ny(d, 9, m) for d in (THURSDAY, FRIDAY) for m in (30, 35)]
    assert all(check.passed for check in results["derived_bars"].checks)
    stored = {table: rows(store, table, "AAA") for table in TABLES}
    start, end = ny(THURSDAY, 0, 0), ny(FRIDAY, 0, 0)
    on_thursday = {table: frame[frame["bar_start"].between(start, end - 1)]
                   for table, frame in stored.items()}
    assert len(on_thursday["candles"]) == 11 + 6  # 1m with the 16:00 print; 2 5m, 15m, 30m, 1h, 1d
    assert len(on_thursday["indicator_values"]) > 0

    monkeypatch.setenv("CANDLEFLOW_STORE_URL", store_url)
    assert main(["bars", "delete", "AAA", "--from", "2024-03-07", "--to", "2024-03-07"]) == 0
    counts = ", ".join(f"{table} {len(frame)}" for table, frame in on_thursday.items())
    assert capsys.readouterr().out == (
        f"deleted AAA 2024-03-07..2024-03-07 at 1m, 5m, 15m, 30m, 1h, 1d: {counts} rows\n")
    for table, frame in stored.items():
        after = frame[~frame["bar_start"].between(start, end - 1)].reset_index(drop=True)
        pd.testing.assert_frame_equal(rows(store, table, "AAA"), after, obj=table)

    assert failures(run(store, FileSource(tmp_path), ["AAA"])) == {}
    rederived = rows(store, "candles", "AAA")
    expected = stored["candles"][stored["candles"]["bar_start"] != ny(THURSDAY, 16, 0)]
    pd.testing.assert_frame_equal(rederived, expected.reset_index(drop=True))
    store.dispose()


def test_bars_delete_refuses_a_bad_range(store_url, monkeypatch, capsys):
    monkeypatch.setenv("CANDLEFLOW_STORE_URL", store_url)
    assert main(["bars", "delete", "AAA", "--from", "2024-03-08", "--to", "2024-03-07"]) == 2
    assert capsys.readouterr().err == "candleflow: error: --from 2024-03-08 is after --to 2024-03-07\n"
    assert main(["bars", "delete", "aaa", "--from", "2024-03-08", "--to", "2024-03-08"]) == 2
    assert "malformed symbol 'aaa'" in capsys.readouterr().err


# -- item 6: values that could overflow a sum -------------------------------------------------------


def test_volumes_that_could_overflow_are_refused(store, tmp_path):
    land(tmp_path, "HUGE", session_start(FRIDAY, 5), volume=1e308)
    land(tmp_path, "AAA", session_start(FRIDAY, 5))
    results = run(store, FileSource(tmp_path), ["AAA", "HUGE"])
    assert failures(results) == {"raw_candles": {"HUGE": (
        "HUGE at 2024-03-08T14:30:00Z in HUGE.csv: value above 1e+15 "
        "(open=10.0, high=11.0, low=9.0, close=10.5, volume=1e+308)")}}
    assert rows(store, "candles", "HUGE").empty
    assert store.read_candles(["AAA"], "5m")["volume"].tolist() == [500.0]


@pytest.mark.parametrize(("column", "value"), [("volume", np.inf), ("close", np.nan), ("high", np.inf)])
def test_ohlc_consistent_refuses_non_finite_values(column, value):
    bar = pd.DataFrame({"symbol": ["AAA", "BBB"], "bar_start": [ny(FRIDAY, 9, 30)] * 2, "open": 10.0,
                        "high": 11.0, "low": 9.0, "close": 10.5, "volume": 500.0})
    bar.loc[1, column] = value
    outcome = ohlc_consistent({"5m": bar})
    assert outcome.failures == {"BBB": "5m bar has a non-finite value at 2024-03-08T14:30:00Z"}


# -- item 12: the calendar covers long history ------------------------------------------------------


def test_the_calendar_starts_at_a_fixed_early_date():
    assert CALENDAR.first_session == date(1990, 1, 2)
    assert PipelineSettings().sessions().first_session == date(1990, 1, 2)
    assert PipelineSettings(calendar_start="2024-03-01").sessions().first_session == date(2024, 3, 1)


def test_25_years_of_daily_bars_produce_indicators(store):
    window = window_between(CALENDAR, date(2000, 1, 4), date(2024, 12, 31))  # synthetic: after 01-03
    results = run(store, SyntheticSource(7, "1d", CALENDAR), ["AAA", "BBB"], window)
    assert failures(results) == {}
    daily = store.read_candles(["AAA"], "1d")
    assert len(daily) == len(window.sessions) and daily["bar_start"].iloc[0] == ny(date(2000, 1, 4), 9, 30)
    sma = store.read_indicators(["AAA"], "1d").query("name == 'sma_200'")
    assert len(sma) == len(window.sessions) - 199


def test_a_history_window_before_the_first_session_is_clamped():
    late = ExchangeSessions("XNYS", start=date(2024, 3, 1))
    window = window_between(late, date(2024, 3, 7), date(2024, 3, 8))
    history = history_window(late, window, "1d", 300)
    assert history.first_session == date(2024, 3, 1) and history.last_session == FRIDAY
    assert len(history.sessions) == 6
