"""candleflow on calendars other than New York: London (XLON), Tokyo (XTKS) and the 24/7 calendar.

Bars follow each calendar's sessions, the synthetic source its hours, the daily schedule and the
freshness policy of scan_signals its close, and the market_data job runs end to end on XLON.
"""

import datetime as dt
from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import exchange_calendars
import numpy as np
import pandas as pd
import pytest

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.defs.market_data.assets import signals_freshness
from candleflow.defs.market_data.schedules import after_close_schedule
from candleflow.market.bars import derive_bars
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.synthetic import synthetic_minutes
from candleflow.pipeline.history import preload_daily_history
from candleflow.resources import PipelineSettings, SyntheticCandles
from candleflow.sources.synthetic import SyntheticSource
from candleflow.store import CandleStore
from tests.pipeline_fixtures import run_pipeline, sqlite_instance

LONDON = ZoneInfo("Europe/London")
XLON = ExchangeSessions("XLON")
ALWAYS = ExchangeSessions("24/7")
SYMBOLS = ["AAA", "BBB"]
# London's clocks go forward on 2024-03-31: the sessions on either side open at 08:00 GMT and BST.
AROUND_BST = XLON.sessions(dt.date(2024, 3, 28), dt.date(2024, 4, 3))


def local_times(epoch_seconds, zone: ZoneInfo) -> list[dt.time]:
    return [dt.datetime.fromtimestamp(int(t), zone).time() for t in epoch_seconds]


def test_xlon_hourly_bars_start_at_the_london_open_across_the_clock_change():
    minutes = synthetic_minutes(SYMBOLS, AROUND_BST, seed=1, calendar=XLON)
    hourly = derive_bars(minutes, "1h", AROUND_BST)
    starts = set(local_times(hourly["bar_start"], LONDON))
    assert starts == {dt.time(h, 0) for h in range(8, 17)}  # 08:00 .. 16:00, the last one 30 min
    assert {dt.datetime.fromtimestamp(t, dt.UTC).hour for t in AROUND_BST["open"]} == {7, 8}
    daily = derive_bars(minutes, "1d", AROUND_BST)
    assert (daily.groupby("symbol")["bar_start"].apply(list) == [list(AROUND_BST["open"])] * 2).all()


def test_24_7_hourly_bars_start_on_the_utc_hour_and_a_day_is_one_session():
    weekend = ALWAYS.sessions(dt.date(2024, 3, 8), dt.date(2024, 3, 11))  # Friday to Monday
    assert list(weekend["session"]) == [dt.date(2024, 3, d) for d in (8, 9, 10, 11)]
    minutes = synthetic_minutes(SYMBOLS, weekend, seed=1, calendar=ALWAYS)
    assert minutes.groupby("symbol").size().between(4 * 1380, 4 * 1440).all()
    hourly = derive_bars(minutes, "1h", weekend)
    assert set(local_times(hourly["bar_start"], ZoneInfo("UTC"))) == {dt.time(h) for h in range(24)}
    daily = derive_bars(minutes, "1d", weekend)
    assert daily.groupby("symbol").size().tolist() == [4, 4]
    # weekend sessions are days of their own, not copies of Monday's
    assert daily.groupby("symbol")["close"].nunique().tolist() == [4, 4]


def test_the_per_minute_volatility_follows_the_session_length():
    """A full session moves by about the same as on XNYS, however many minutes it has."""
    sessions = {"XNYS": ExchangeSessions().sessions_ending(dt.date(2024, 6, 28), 40),
                "XLON": XLON.sessions_ending(dt.date(2024, 6, 28), 40),
                "24/7": ALWAYS.sessions_ending(dt.date(2024, 6, 28), 40)}
    moves = {}
    for name, frame in sessions.items():
        minutes = synthetic_minutes([f"S{i}" for i in range(20)], frame, seed=2,
                                    calendar=ExchangeSessions(name))
        returns = np.log(minutes["close"]).groupby(minutes["symbol"]).diff().dropna()
        moves[name] = returns.std() * np.sqrt(frame.eval("close - open").max() / 60)
    assert max(moves.values()) < 1.3 * min(moves.values())


def test_the_synthetic_source_on_xlon_prints_minutes_inside_xlon_sessions_only():
    as_of = dt.datetime(2024, 4, 2, 18, 0, tzinfo=LONDON)
    batch = SyntheticSource(calendar=XLON, as_of=as_of).fetch(SYMBOLS, None)
    session = XLON.sessions(dt.date(2024, 4, 2), dt.date(2024, 4, 2)).iloc[0]
    starts = batch.candles["bar_start"]
    assert starts.min() == session["open"] and starts.max() == session["close"] - 60
    assert local_times([starts.min()], LONDON) == [dt.time(8, 0)]
    assert batch.candles.groupby("symbol").size().between(480, 510).all()


def xtks_close() -> dt.time:
    """Tokyo's close as the installed exchange_calendars has it (15:30 from November 2024)."""
    return exchange_calendars.get_calendar("XTKS").closes.iloc[-1].tz_convert("Asia/Tokyo").time()


def cron_after(close: dt.time, minutes: int, days: str) -> str:
    at = dt.datetime.combine(dt.date(2024, 1, 1), close) + timedelta(minutes=minutes)
    return f"{at.minute} {at.hour} * * {days}"


@pytest.mark.parametrize("sessions, close, days, timezone", [
    (ExchangeSessions(), dt.time(16, 0), "1-5", "America/New_York"),
    (XLON, dt.time(16, 30), "1-5", "Europe/London"),
    (ExchangeSessions("XTKS", dt.date(2020, 1, 1)), xtks_close(), "1-5", "Asia/Tokyo"),
    (ALWAYS, dt.time(0, 0), "*", "UTC"),
])
def test_the_schedule_and_the_deadline_follow_the_close_in_the_exchange_zone(sessions, close, days,
                                                                              timezone):
    assert sessions.typical_close() == close
    schedule = after_close_schedule(sessions)
    assert (schedule.name, schedule.cron_schedule, schedule.execution_timezone) == (
        "daily_after_close", cron_after(close, 5, days), timezone)
    policy = signals_freshness(sessions)
    assert (policy.deadline_cron, policy.timezone) == (cron_after(close, 30, days), timezone)


def test_the_schedule_crons_of_new_york_london_and_24_7():
    assert [after_close_schedule(s).cron_schedule for s in (ExchangeSessions(), XLON, ALWAYS)] == [
        "5 16 * * 1-5", "35 16 * * 1-5", "5 0 * * *"]


def evaluate(sessions: ExchangeSessions, when: dt.datetime, instance):
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when,
        resources={"settings": PipelineSettings(calendar=sessions.calendar_name)})
    return after_close_schedule(sessions)(context)


def test_the_schedule_runs_the_london_session_and_skips_its_holidays():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, SYMBOLS)
        request = evaluate(XLON, dt.datetime(2024, 12, 24, 16, 35, tzinfo=LONDON), instance)
        assert request.run_key == "session-2024-12-24"
        christmas = evaluate(XLON, dt.datetime(2024, 12, 25, 16, 35, tzinfo=LONDON), instance)
        assert christmas.skip_message == "2024-12-25 is not a trading session"


def test_the_24_7_schedule_runs_the_day_that_closed_at_midnight():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, SYMBOLS)
        sunday = evaluate(ALWAYS, dt.datetime(2024, 3, 11, 0, 5, tzinfo=dt.UTC), instance)
        assert sunday.run_config["ops"]["plan_shards"]["config"] == {
            "start": "2024-03-10", "end": "2024-03-10"}


def test_the_market_data_job_on_xlon_stores_bars_from_the_london_open(tmp_path):
    session, previous = dt.date(2024, 4, 2), dt.date(2024, 3, 28)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = CandleStore(url)
    store.create_schema()
    preload_daily_history(store, XLON, SYMBOLS, 300, seed=7, through=previous)
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, url, SYMBOLS, source=SyntheticCandles(seed=7), session=session,
                              settings=PipelineSettings(calendar="XLON"))
    assert result.success
    hourly = store.read_candles(SYMBOLS, "1h")
    first = hourly.groupby("symbol")["bar_start"].min()
    assert local_times(first, LONDON) == [dt.time(8, 0)] * 2
    assert set(local_times(hourly["bar_start"], LONDON)) == {dt.time(h, 0) for h in range(8, 17)}
    daily = store.read_candles(SYMBOLS, "1d")
    opens = XLON.sessions(session, session)["open"].iloc[0]
    assert (daily.groupby("symbol")["bar_start"].max() == opens).all()
    assert pd.Series(local_times(daily["bar_start"], LONDON)).eq(dt.time(8, 0)).all()
