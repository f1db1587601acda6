"""derive_bars against a pandas reference written here, over a DST change and a half day."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from candleflow.market.bars import derive_bars
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import CANDLE_COLUMNS, as_candle_frame, empty_candles

NEW_YORK = ZoneInfo("America/New_York")
XNYS = ExchangeSessions()
# 2024-03-10: clocks go forward; 2024-11-28 Thanksgiving (closed), 2024-11-29 closes at 13:00.
SESSIONS = pd.concat(
    [
        XNYS.sessions(dt.date(2024, 3, 7), dt.date(2024, 3, 12)),
        XNYS.sessions(dt.date(2024, 11, 27), dt.date(2024, 12, 2)),
    ],
    ignore_index=True,
)
INTERVAL_MINUTES = {"5m": 5, "15m": 15, "30m": 30, "1h": 60}


def ny(day: dt.date, hour: int, minute: int, second: int = 0) -> int:
    moment = dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=NEW_YORK)
    return int(moment.timestamp())


def minute_frame(rows: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """1m candles with random prices for the given {symbol: bar_start array}."""
    rng = np.random.default_rng(seed)
    parts = []
    for symbol, starts in rows.items():
        n = len(starts)
        close = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2)
        open_ = np.round(close + rng.normal(0, 0.05, n), 2)
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "bar_start": starts,
                    "open": open_,
                    "high": np.maximum(open_, close) + np.round(rng.uniform(0, 0.1, n), 2),
                    "low": np.minimum(open_, close) - np.round(rng.uniform(0, 0.1, n), 2),
                    "close": close,
                    "volume": rng.integers(1, 5000, n).astype(float),
                    "minutes": 1,
                    "complete": True,
                }
            )
        )
    return as_candle_frame(pd.concat(parts, ignore_index=True))


def session_minutes(sessions: pd.DataFrame) -> np.ndarray:
    return np.concatenate(
        [np.arange(o, c, 60, dtype=np.int64) for o, c in zip(sessions["open"], sessions["close"])]
    )


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    every = session_minutes(SESSIONS)
    rows = {s: every[rng.random(len(every)) > 0.03] for s in ("AAA", "BBB", "CCC")}
    return minute_frame(rows)


def reference(minutes: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Bars by explicit buckets in New York time: XNYS sessions open at 09:30 local."""
    local = pd.to_datetime(minutes["bar_start"], unit="s", utc=True).dt.tz_convert(NEW_YORK)
    session_open = local.dt.normalize() + pd.Timedelta(hours=9, minutes=30)
    if interval == "1d":
        bucket = session_open
    else:
        step = pd.Timedelta(minutes=INTERVAL_MINUTES[interval])
        bucket = session_open + ((local - session_open) // step) * step
    grouped = minutes.assign(bucket=bucket).groupby(["symbol", "bucket"], sort=True)
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        minutes=("open", "size"),
    ).reset_index()
    out["bar_start"] = out["bucket"].map(lambda t: int(t.timestamp()))
    out["complete"] = True
    return as_candle_frame(out)


@pytest.mark.parametrize("interval", ["5m", "15m", "30m", "1h", "1d"])
def test_matches_pandas_reference(minutes, interval):
    bars = derive_bars(minutes, interval, SESSIONS)
    assert list(bars.columns) == list(CANDLE_COLUMNS)
    assert bars.dtypes.to_dict() == empty_candles().dtypes.to_dict()
    pd.testing.assert_frame_equal(bars, reference(minutes, interval))


def test_daily_bars_are_sessions_stamped_with_the_open(minutes):
    bars = derive_bars(minutes, "1d", SESSIONS)
    assert len(bars) == 3 * len(SESSIONS)
    assert set(bars["bar_start"]) == set(SESSIONS["open"])
    half_day = bars["bar_start"] == ny(dt.date(2024, 11, 29), 9, 30)
    assert (bars.loc[half_day, "minutes"] <= 210).all()
    assert (bars.loc[half_day, "minutes"] > 190).all()


def test_hourly_bars_align_to_the_open_across_dst_and_end_partial():
    days = XNYS.sessions(dt.date(2024, 3, 8), dt.date(2024, 3, 11))
    bars = derive_bars(minute_frame({"AAA": session_minutes(days)}), "1h", days)
    utc = pd.to_datetime(bars["bar_start"], unit="s", utc=True)
    friday, monday = bars[utc.dt.day == 8], bars[utc.dt.day == 11]
    # 09:30, 10:30, ..., 15:30 New York: 14:30.. UTC in winter, 13:30.. UTC in summer
    assert list(utc[friday.index].dt.strftime("%H:%M")) == [f"{h}:30" for h in range(14, 21)]
    assert list(utc[monday.index].dt.strftime("%H:%M")) == [f"{h}:30" for h in range(13, 20)]
    for day in (friday, monday):
        assert list(day["minutes"]) == [60] * 6 + [30]  # 15:30-16:00 is the partial last bar
        assert day["complete"].all()


def test_half_day_ends_with_a_partial_bar():
    day = dt.date(2024, 11, 29)
    sessions = XNYS.sessions(day, day)
    bars = derive_bars(minute_frame({"AAA": session_minutes(sessions)}), "1h", sessions)
    assert list(bars["bar_start"]) == [ny(day, h, 30) for h in (9, 10, 11, 12)]
    assert list(bars["minutes"]) == [60, 60, 60, 30]
    assert bars["complete"].all()
    thirty = derive_bars(minute_frame({"AAA": session_minutes(sessions)}), "30m", sessions)
    assert len(thirty) == 7 and (thirty["minutes"] == 30).all()


def test_missing_minutes_count_and_empty_buckets_give_no_bar():
    day = dt.date(2024, 3, 11)
    sessions = XNYS.sessions(day, day)
    every = session_minutes(sessions)
    gone = {ny(day, 10, 1), ny(day, 10, 3)} | {ny(day, 10, m) for m in range(15, 30)}
    minutes = minute_frame({"AAA": every[~np.isin(every, list(gone))]})
    five = derive_bars(minutes, "5m", sessions).set_index("bar_start")
    assert five.loc[ny(day, 10, 0), "minutes"] == 3
    assert five.loc[ny(day, 10, 5), "minutes"] == 5
    assert not {ny(day, 10, 15), ny(day, 10, 20), ny(day, 10, 25)} & set(five.index)
    fifteen = derive_bars(minutes, "15m", sessions).set_index("bar_start")
    assert ny(day, 10, 15) not in fifteen.index
    assert fifteen.loc[ny(day, 10, 0), "minutes"] == 13
    daily = derive_bars(minutes, "1d", sessions)
    assert daily["minutes"].tolist() == [390 - len(gone)]
    assert daily["volume"].tolist() == [minutes["volume"].sum()]


def test_bar_in_progress_is_incomplete_with_as_of():
    day = dt.date(2024, 3, 11)
    sessions = XNYS.sessions(day, day)
    every = session_minutes(sessions)
    minutes = minute_frame(
        {
            "AAA": every[every <= ny(day, 10, 7)],  # last 1m bar 10:07-10:08
            "BBB": every[every <= ny(day, 10, 9)],  # last 1m bar 10:09-10:10
        }
    )

    def complete(as_of: int | None, interval: str, symbol: str = "AAA") -> dict[int, bool]:
        bars = derive_bars(minutes, interval, sessions, as_of=as_of)
        bars = bars[bars["symbol"] == symbol]
        return dict(zip(bars["bar_start"], bars["complete"]))

    live = ny(day, 10, 8, 20)
    five = complete(live, "5m")
    assert five[ny(day, 10, 0)] is True or five[ny(day, 10, 0)]
    assert not five[ny(day, 10, 5)]
    assert sum(not c for c in five.values()) == 1
    assert derive_bars(minutes, "5m", sessions, as_of=live).set_index(
        ["symbol", "bar_start"]
    ).loc[("AAA", ny(day, 10, 5)), "minutes"] == 3
    # BBB has printed the 10:09 bar, so its data reach 10:10 and its 10:05 bar is done
    assert complete(live, "5m", "BBB")[ny(day, 10, 5)]
    assert not complete(live, "1h")[ny(day, 9, 30)]
    assert not complete(live, "1d")[ny(day, 9, 30)]
    # at 10:10 the 10:05-10:10 window has ended
    assert complete(ny(day, 10, 10), "5m")[ny(day, 10, 5)]
    # as_of earlier than the data: the data horizon (last bar + 1 minute = 10:08) still rules
    early = complete(ny(day, 10, 4), "5m")
    assert early[ny(day, 10, 0)] and not early[ny(day, 10, 5)]
    # once the session has closed every bar is final, however few minutes it got
    assert all(complete(ny(day, 16, 0), "5m").values())
    assert all(complete(None, "1h").values())


@pytest.mark.parametrize("interval", ["5m", "1h", "1d"])
def test_minutes_outside_the_regular_hours_are_left_out(minutes, interval):
    """Pre-market, the 16:00 print, after hours and a Saturday (a bar stored before such bars
    were refused) make no bar and change none."""
    day = dt.date(2024, 3, 8)
    outside = [ny(day, 4, 0), ny(day, 9, 29), ny(day, 16, 0), ny(day, 19, 59),
               ny(dt.date(2024, 3, 9), 10, 0)]
    extra = minute_frame({"AAA": np.array(outside), "ZZZ": np.array(outside)}, seed=1)
    with_extra = as_candle_frame(pd.concat([minutes, extra]))
    assert len(with_extra) == len(minutes) + 2 * len(outside)
    pd.testing.assert_frame_equal(derive_bars(with_extra, interval, SESSIONS, ny(day, 16, 30)),
                                  derive_bars(minutes, interval, SESSIONS, ny(day, 16, 30)))


def test_unsorted_or_duplicate_minutes_raise(minutes):
    with pytest.raises(ValueError, match="sorted"):
        derive_bars(minutes.iloc[::-1].reset_index(drop=True), "5m", SESSIONS)
    with pytest.raises(ValueError, match="sorted"):
        derive_bars(pd.concat([minutes, minutes], ignore_index=True), "5m", SESSIONS)
    twice = as_candle_frame(pd.concat([minutes.head(3), minutes.head(1)]))
    with pytest.raises(ValueError, match="duplicate"):
        derive_bars(twice, "5m", SESSIONS)


def test_empty_input_and_unknown_interval(minutes):
    empty = derive_bars(minutes.iloc[:0], "5m", SESSIONS)
    assert empty.empty and list(empty.columns) == list(CANDLE_COLUMNS)
    with pytest.raises(ValueError, match="unknown interval"):
        derive_bars(minutes, "2h", SESSIONS)
    with pytest.raises(ValueError, match="cannot derive"):
        derive_bars(minutes, "1m", SESSIONS)
