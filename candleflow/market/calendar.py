"""Trading sessions of an exchange, from ``exchange_calendars``, as plain dates and epoch seconds.

Building an ``exchange_calendars`` calendar takes a few hundred milliseconds, so the calendar and
its session table are built once per calendar name and shared by every ``ExchangeSessions``.
The table covers the library's default range (about 20 years back to 1 year ahead of today);
dates outside it raise ValueError rather than silently giving no sessions.
"""

import datetime
import functools
from dataclasses import dataclass

import exchange_calendars
import numpy as np
import pandas as pd

@dataclass(frozen=True)
class _SessionTable:
    days: np.ndarray  # datetime64[D], ascending
    opens: np.ndarray  # int64 epoch seconds UTC
    closes: np.ndarray  # int64 epoch seconds UTC
    timezone: str  # the exchange's time zone, e.g. America/New_York


def _epoch_seconds(utc_times: pd.Series) -> np.ndarray:
    return utc_times.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)


@functools.cache
def _session_table(calendar_name: str) -> _SessionTable:
    calendar = exchange_calendars.get_calendar(calendar_name)
    return _SessionTable(
        days=calendar.sessions.to_numpy().astype("datetime64[D]"),
        opens=_epoch_seconds(calendar.opens),
        closes=_epoch_seconds(calendar.closes),
        timezone=str(calendar.tz),
    )


class ExchangeSessions:
    """Sessions of one exchange calendar (default XNYS, the New York Stock Exchange)."""

    def __init__(self, calendar_name: str = "XNYS") -> None:
        self.calendar_name = calendar_name
        self._table = _session_table(calendar_name)

    @property
    def timezone(self) -> str:
        return self._table.timezone

    @property
    def first_session(self) -> datetime.date:
        return self._table.days[0].item()

    @property
    def last_session(self) -> datetime.date:
        return self._table.days[-1].item()

    def _check_in_range(self, d: datetime.date) -> np.datetime64:
        day = np.datetime64(d, "D")
        if not self._table.days[0] <= day <= self._table.days[-1]:
            raise ValueError(
                f"{d} is outside the {self.calendar_name} calendar range "
                f"{self.first_session}..{self.last_session}"
            )
        return day

    def _frame(self, lo: int, hi: int) -> pd.DataFrame:
        t = self._table
        return pd.DataFrame(
            {
                "session": pd.Series(t.days[lo:hi].astype(object), dtype=object),
                "open": t.opens[lo:hi],
                "close": t.closes[lo:hi],
            }
        )

    def sessions(self, start: datetime.date, end: datetime.date) -> pd.DataFrame:
        """Sessions in [start, end], ascending: session (date), open and close (epoch seconds)."""
        days = self._table.days
        lo = np.searchsorted(days, self._check_in_range(start), side="left")
        hi = np.searchsorted(days, self._check_in_range(end), side="right")
        return self._frame(lo, max(lo, hi))

    def sessions_ending(self, last: datetime.date, count: int) -> pd.DataFrame:
        """The ``count`` sessions up to and including ``last`` (the latest ones on or before it)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        hi = np.searchsorted(self._table.days, self._check_in_range(last), side="right")
        if hi < count:
            raise ValueError(
                f"only {hi} {self.calendar_name} sessions on or before {last} in the calendar "
                f"range (starts {self.first_session}); {count} requested"
            )
        return self._frame(hi - count, hi)

    def is_session(self, d: datetime.date) -> bool:
        day = self._check_in_range(d)
        i = np.searchsorted(self._table.days, day)
        return bool(self._table.days[i] == day)

    def last_closed_session(self, as_of: datetime.datetime) -> datetime.date:
        """The latest session whose close is at or before ``as_of`` (which must be tz-aware)."""
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValueError(f"as_of must be timezone-aware, got naive {as_of!r}")
        closes = self._table.closes
        i = np.searchsorted(closes, int(as_of.timestamp()), side="right") - 1
        if i < 0 or i == len(closes) - 1:
            raise ValueError(
                f"{as_of.isoformat()} is outside the {self.calendar_name} calendar range "
                f"{self.first_session}..{self.last_session}"
            )
        return self._table.days[i].item()
