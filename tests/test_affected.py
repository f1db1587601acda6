"""Which bars a new minute touches, and coarser bars built from finer ones."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from test_bars import SESSIONS, XNYS, minute_frame, ny, session_minutes

from candleflow.market.affected import BUILT_FROM, affected_bars, built_on
from candleflow.market.bars import derive_bars
from candleflow.market.frames import as_candle_frame

MARCH_8 = dt.date(2024, 3, 8)  # New York on EST (UTC-5)
MARCH_11 = dt.date(2024, 3, 11)  # after the DST change (UTC-4)
HALF_DAY = dt.date(2024, 11, 29)  # closes at 13:00


@pytest.mark.parametrize("day", [MARCH_8, MARCH_11])
def test_minute_1007_affects_its_bar_of_every_interval(day):
    assert affected_bars(ny(day, 10, 7), SESSIONS) == {
        "1m": ny(day, 10, 7), "5m": ny(day, 10, 5), "15m": ny(day, 10, 0), "30m": ny(day, 10, 0),
        "1h": ny(day, 9, 30), "1d": ny(day, 9, 30)}


def test_session_edges():
    assert affected_bars(ny(MARCH_8, 9, 30), SESSIONS) == dict.fromkeys(
        ("1m", "5m", "15m", "30m", "1h", "1d"), ny(MARCH_8, 9, 30))
    last = affected_bars(ny(MARCH_8, 15, 59), SESSIONS)
    assert (last["5m"], last["15m"], last["30m"], last["1h"]) == (
        ny(MARCH_8, 15, 55), ny(MARCH_8, 15, 45), ny(MARCH_8, 15, 30), ny(MARCH_8, 15, 30))
    early_close = affected_bars(ny(HALF_DAY, 12, 59), SESSIONS)
    assert (early_close["1h"], early_close["1d"]) == (ny(HALF_DAY, 12, 30), ny(HALF_DAY, 9, 30))


@pytest.mark.parametrize("moment", [(MARCH_8, 4, 0), (MARCH_8, 9, 29), (MARCH_8, 16, 0),
                                    (dt.date(2024, 3, 9), 11, 0), (dt.date(2024, 3, 11), 8, 0)])
def test_minute_outside_the_regular_hours_affects_the_next_session(moment):
    """Pre-market, the 16:00 print, after hours, a weekend: nothing before the next open changes."""
    next_open = SESSIONS["open"][SESSIONS["open"] > ny(*moment)].iloc[0]
    assert affected_bars(ny(*moment), SESSIONS) == dict.fromkeys(
        ("1m", "5m", "15m", "30m", "1h", "1d"), next_open)


def test_minute_after_the_last_session_affects_nothing():
    """Only a 16:30 minute arrives: every interval starts at the close, where no bar is."""
    sessions = XNYS.sessions(MARCH_8, MARCH_8)
    assert affected_bars(ny(MARCH_8, 16, 30), sessions) == dict.fromkeys(
        ("1m", "5m", "15m", "30m", "1h", "1d"), ny(MARCH_8, 16, 0))


def chained(minutes: pd.DataFrame, sessions: pd.DataFrame, as_of: int | None) -> dict[str, pd.DataFrame]:
    bars = {"1m": minutes}
    for interval, source in BUILT_FROM.items():
        bars[interval] = derive_bars(bars[source], interval, sessions, as_of, source)
    return bars


@pytest.mark.parametrize("day", [MARCH_11, HALF_DAY])
@pytest.mark.parametrize("clock", [(10, 8, 20), (10, 15, 0), (10, 4, 0), (12, 31, 0), None])
def test_bars_built_from_finer_bars_equal_bars_from_minutes(day, clock):
    """Same prices, minute counts and completeness, with missing minutes and a lagging clock."""
    sessions = XNYS.sessions(day, day)
    every = session_minutes(sessions)
    rng = np.random.default_rng(3)
    kept = every[(rng.random(len(every)) > 0.2) & (every <= ny(day, 12, 30))]
    minutes = minute_frame({"AAA": kept, "BBB": kept[kept <= ny(day, 10, 9)], "CCC": kept[::7]})
    as_of = None if clock is None else ny(day, *clock)
    for interval, bars in chained(minutes, sessions, as_of).items():
        pd.testing.assert_frame_equal(bars, derive_bars(minutes, interval, sessions, as_of)
                                      if interval != "1m" else minutes, obj=interval)


def test_intervals_built_on_an_interval():
    assert built_on("1m") == ["5m", "15m", "30m", "1h", "1d"]
    assert built_on("30m") == ["1h", "1d"]
    assert built_on("1d") == []


def test_incompatible_source_intervals_are_refused():
    minutes = minute_frame({"AAA": session_minutes(XNYS.sessions(MARCH_8, MARCH_8))})
    for interval, source in [("5m", "15m"), ("1h", "1h"), ("1h", "1d"), ("15m", "30m")]:
        with pytest.raises(ValueError, match=f"cannot derive {interval} bars from {source} bars"):
            derive_bars(as_candle_frame(minutes), interval, SESSIONS, source=source)
