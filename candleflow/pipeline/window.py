"""The sessions a run covers, and how much history before them a stage loads."""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import DAILY, INTRADAY_SECONDS

REGULAR_SESSION_SECONDS = 390 * 60


@dataclass(frozen=True)
class Window:
    """Consecutive trading sessions: a frame with columns session, open, close (epoch s UTC)."""

    sessions: pd.DataFrame

    @property
    def first_session(self) -> date:
        return self.sessions["session"].iloc[0]

    @property
    def last_session(self) -> date:
        return self.sessions["session"].iloc[-1]

    @property
    def start(self) -> int:
        return int(self.sessions["open"].iloc[0])

    @property
    def end(self) -> int:
        return int(self.sessions["close"].iloc[-1])

    def describe(self) -> str:
        if self.first_session == self.last_session:
            return str(self.first_session)
        return f"{self.first_session}..{self.last_session}"


def window_between(calendar: ExchangeSessions, start: date, end: date) -> Window:
    sessions = calendar.sessions(start, end)
    if sessions.empty:
        raise ValueError(f"no trading session between {start} and {end}")
    return Window(sessions)


def window_of_bars(calendar: ExchangeSessions, first_bar: int, last_bar: int) -> Window:
    """The sessions whose trading hours hold the bars starting at ``first_bar`` .. ``last_bar``."""
    day = timedelta(days=1)
    first_day = datetime.fromtimestamp(first_bar, UTC).date() - day
    last_day = datetime.fromtimestamp(last_bar, UTC).date() + day
    sessions = calendar.sessions(first_day, last_day)
    inside = (sessions["close"] > first_bar) & (sessions["open"] <= last_bar)
    return Window(sessions.loc[inside].reset_index(drop=True))


def history_window(calendar: ExchangeSessions, window: Window, interval: str, bars: int) -> Window:
    """``window`` extended back by enough sessions to hold ``bars`` bars of ``interval``."""
    per_session = 1 if interval == DAILY else math.ceil(REGULAR_SESSION_SECONDS / INTRADAY_SECONDS[interval])
    count = math.ceil(bars / per_session) + 1 + len(window.sessions)
    return Window(calendar.sessions_ending(window.last_session, count))
