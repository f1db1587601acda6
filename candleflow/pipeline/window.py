"""The sessions a run covers, and how much history before them a stage loads."""

import math
from dataclasses import dataclass
from datetime import date

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import DAILY, INTRADAY_SECONDS


@dataclass(frozen=True)
class Window:
    """Consecutive trading sessions: a frame of ``ExchangeSessions.sessions`` (session, open,
    close, extended_open, extended_close; epoch s UTC)."""

    sessions: pd.DataFrame

    @property
    def first_session(self) -> date:
        return self.sessions["session"].iloc[0]

    @property
    def last_session(self) -> date:
        return self.sessions["session"].iloc[-1]

    @property
    def start(self) -> int:
        """Where the first session's bars begin (its open, or extended open with extended-hours bars)."""
        return int(self.sessions["bar_open"].iloc[0])

    @property
    def end(self) -> int:
        return int(self.sessions["bar_close"].iloc[-1])

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
    """The sessions whose trading hours, extended hours included, hold the bars starting at
    ``first_bar`` .. ``last_bar`` (bars the bad-row rules let through: each is in a session)."""
    sessions = calendar.sessions_near(first_bar, last_bar)
    inside = (sessions["extended_close"] > first_bar) & (sessions["extended_open"] <= last_bar)
    return Window(sessions.loc[inside].reset_index(drop=True))


def history_window(calendar: ExchangeSessions, window: Window, interval: str, bars: int) -> Window:
    """``window`` extended back by enough sessions to hold ``bars`` bars of ``interval``, or by
    all the sessions there are before it where the calendar starts later (the history is shorter).
    A session is taken to hold as many bars as the calendar's longest session (of the hours bars
    are made of)."""
    per_session = (1 if interval == DAILY
                   else math.ceil(calendar.bar_session_seconds / INTRADAY_SECONDS[interval]))
    count = math.ceil(bars / per_session) + 1 + len(window.sessions)
    return Window(calendar.sessions_ending(window.last_session, count, clamp=True))
