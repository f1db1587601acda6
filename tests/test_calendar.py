"""ExchangeSessions against XNYS facts checked by hand: hours, half days, holidays, DST."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from candleflow.market.calendar import (
    NEXT_SESSION,
    PREVIOUS_SESSION,
    ExchangeSessions,
    session_index,
)

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def new_york(day: dt.date, hour: int, minute: int) -> int:
    """Epoch seconds of a New York wall-clock time (zoneinfo, not the code under test)."""
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK).timestamp())


@pytest.fixture(scope="module")
def xnys() -> ExchangeSessions:
    return ExchangeSessions("XNYS")


def test_frame_shape_and_types(xnys):
    frame = xnys.sessions(dt.date(2024, 11, 25), dt.date(2024, 12, 6))
    assert list(frame.columns) == ["session", "open", "close", "extended_open", "extended_close", "bar_open",
                                   "bar_close"]
    assert (frame["bar_open"].tolist(), frame["bar_close"].tolist()) == (frame["open"].tolist(),
                                                                          frame["close"].tolist())
    assert all(frame[column].dtype == np.int64 for column in frame.columns[1:])
    assert all(type(d) is dt.date for d in frame["session"])
    assert frame["open"].is_monotonic_increasing
    # Thanksgiving (28th) is a holiday: 9 sessions in these two weeks
    assert list(frame["session"]) == [
        dt.date(2024, 11, d) for d in (25, 26, 27, 29)
    ] + [dt.date(2024, 12, d) for d in (2, 3, 4, 5, 6)]


def test_regular_session_is_390_minutes_from_0930_new_york(xnys):
    day = dt.date(2024, 11, 26)
    (row,) = xnys.sessions(day, day).itertuples()
    assert row.open == new_york(day, 9, 30)
    assert row.close == new_york(day, 16, 0)
    assert (row.close - row.open) // 60 == 390


def test_early_close_day_after_thanksgiving_is_210_minutes(xnys):
    day = dt.date(2024, 11, 29)
    (row,) = xnys.sessions(day, day).itertuples()
    assert row.close == new_york(day, 13, 0)
    assert (row.close - row.open) // 60 == 210


def test_christmas_is_not_a_session(xnys):
    frame = xnys.sessions(dt.date(2024, 12, 23), dt.date(2024, 12, 27))
    assert dt.date(2024, 12, 25) not in set(frame["session"])
    assert len(frame) == 4
    assert not xnys.is_session(dt.date(2024, 12, 25))
    assert xnys.is_session(dt.date(2024, 12, 24))
    assert not xnys.is_session(dt.date(2024, 12, 28))  # a Saturday
    assert xnys.sessions(dt.date(2024, 12, 25), dt.date(2024, 12, 25)).empty


def test_open_follows_new_york_across_dst(xnys):
    frame = xnys.sessions(dt.date(2024, 3, 8), dt.date(2024, 3, 11))
    friday, monday = frame["open"]
    # 09:30 EST = 14:30 UTC before the change on Sunday 2024-03-10, 09:30 EDT = 13:30 UTC after
    assert friday == int(dt.datetime(2024, 3, 8, 14, 30, tzinfo=UTC).timestamp())
    assert monday == int(dt.datetime(2024, 3, 11, 13, 30, tzinfo=UTC).timestamp())


def test_last_closed_session(xnys):
    def at(*args) -> dt.datetime:
        return dt.datetime(*args, tzinfo=UTC)

    # 2024-11-29 closes at 18:00 UTC (13:00 EST)
    assert xnys.last_closed_session(at(2024, 11, 29, 17, 59)) == dt.date(2024, 11, 27)
    assert xnys.last_closed_session(at(2024, 11, 29, 18, 0)) == dt.date(2024, 11, 29)
    assert xnys.last_closed_session(at(2024, 11, 30, 12, 0)) == dt.date(2024, 11, 29)
    assert xnys.last_closed_session(at(2024, 12, 2, 15, 0)) == dt.date(2024, 11, 29)
    tokyo = dt.datetime(2024, 12, 3, 7, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 12-02 22:00 UTC
    assert xnys.last_closed_session(tokyo) == dt.date(2024, 12, 2)
    with pytest.raises(ValueError, match="timezone-aware"):
        xnys.last_closed_session(dt.datetime(2024, 12, 2, 15, 0))


def test_sessions_ending(xnys):
    frame = xnys.sessions_ending(dt.date(2024, 12, 25), 3)
    assert list(frame["session"]) == [dt.date(2024, 12, 20), dt.date(2024, 12, 23),
                                      dt.date(2024, 12, 24)]
    frame = xnys.sessions_ending(dt.date(2024, 12, 2), 2)
    assert list(frame["session"]) == [dt.date(2024, 11, 29), dt.date(2024, 12, 2)]
    with pytest.raises(ValueError, match="count"):
        xnys.sessions_ending(dt.date(2024, 12, 2), 0)


def test_dates_outside_the_calendar_range_raise(xnys):
    with pytest.raises(ValueError, match="outside the XNYS calendar range"):
        xnys.sessions(dt.date(1989, 12, 29), dt.date(2024, 1, 5))
    with pytest.raises(ValueError, match="outside the XNYS calendar range"):
        xnys.is_session(dt.date(2090, 1, 2))
    with pytest.raises(ValueError, match="only 1 XNYS sessions on or before 1990-01-02 .* 5 requested"):
        xnys.sessions_ending(xnys.first_session, 5)
    with pytest.raises(ValueError, match="outside the XNYS calendar range"):
        xnys.last_closed_session(dt.datetime(1990, 1, 2, tzinfo=UTC))


def test_the_range_starts_at_a_fixed_date_or_the_given_one(xnys):
    assert xnys.first_session == dt.date(1990, 1, 2)  # 1990-01-01 was a holiday
    assert ExchangeSessions("XNYS", start=dt.date(2024, 3, 1)).first_session == dt.date(2024, 3, 1)


def test_sessions_ending_clamped_to_the_calendar_start(xnys):
    frame = xnys.sessions_ending(dt.date(1990, 1, 4), 5, clamp=True)
    assert list(frame["session"]) == [dt.date(1990, 1, d) for d in (2, 3, 4)]
    assert len(xnys.sessions_ending(dt.date(2024, 12, 2), 5, clamp=True)) == 5


@pytest.mark.parametrize("day", [dt.date(2024, 3, 8), dt.date(2024, 3, 11), dt.date(2024, 11, 29)])
def test_xnys_extended_hours_are_0400_to_2000_new_york(xnys, day):
    """Across the DST change (03-10) and on a half day (11-29, regular close 13:00)."""
    (row,) = xnys.sessions(day, day).itertuples()
    assert (row.extended_open, row.extended_close) == (new_york(day, 4, 0), new_york(day, 20, 0))


def test_calendars_without_known_extended_hours_have_none():
    day = dt.date(2024, 3, 8)
    (row,) = ExchangeSessions("XLON", start=dt.date(2024, 1, 1)).sessions(day, day).itertuples()
    assert (row.extended_open, row.extended_close) == (row.open, row.close)


def test_sessions_near_bars_are_clipped_to_the_range(xnys):
    friday = new_york(dt.date(2024, 3, 8), 9, 30)
    assert list(xnys.sessions_near(friday, friday)["session"]) == [dt.date(2024, 3, 7), dt.date(2024, 3, 8)]
    assert list(xnys.sessions_near(0, 0)["session"]) == [xnys.first_session]


def test_constructing_again_is_cheap(xnys):
    start = time.perf_counter()
    for _ in range(100):
        ExchangeSessions("XNYS")
    assert time.perf_counter() - start < 0.05


def test_regular_session_seconds_is_the_longest_regular_session(xnys):
    assert xnys.regular_session_seconds == 390 * 60
    assert ExchangeSessions("XLON", start=dt.date(2024, 1, 1)).regular_session_seconds == 510 * 60


def test_session_index_of_bars_inside_between_and_around_sessions(xnys):
    """Half day 11-29 (close 13:00) then Monday 12-02: a bar in regular hours, in the half day's
    after hours, on the weekend, before the first and after the last session."""
    sessions = xnys.sessions(dt.date(2024, 11, 29), dt.date(2024, 12, 2))
    friday, monday = dt.date(2024, 11, 29), dt.date(2024, 12, 2)
    times = np.array([new_york(friday, 9, 30), new_york(friday, 12, 59), new_york(friday, 13, 0),
                      new_york(friday, 19, 59), new_york(dt.date(2024, 11, 30), 12, 0),
                      new_york(monday, 15, 59), new_york(friday, 9, 29), new_york(monday, 16, 0)])
    assert session_index(times, sessions).tolist() == [0, 0, -1, -1, -1, 1, -1, -1]
    assert session_index(times, sessions, hours="extended").tolist() == [0, 0, 0, 0, -1, 1, 0, 1]
    assert session_index(times, sessions, outside=PREVIOUS_SESSION).tolist() == [0, 0, 0, 0, 0, 1, -1, 1]
    assert session_index(times, sessions, outside=NEXT_SESSION).tolist() == [0, 0, 1, 1, 1, 1, 0, 2]
    with pytest.raises(ValueError, match="outside must be one of"):
        session_index(times, sessions, outside="nearest")
