"""Trading sessions of an exchange, from ``exchange_calendars``, as plain dates and epoch seconds.

Building an ``exchange_calendars`` calendar takes a fraction of a second, so the calendar and its
session table are built once per calendar name and start and shared by every ``ExchangeSessions``.
The table covers ``start`` (default ``DEFAULT_START``, a fixed date, so that the range does not move
with the clock) to the library's default end, one year ahead of today; dates outside it raise
ValueError rather than silently giving no sessions. Measured on this machine kind, building the
XNYS table from 1990-01-01 (9,549 sessions) takes 0.14 s, as does the library's default range
(about 20 years, 5,281 sessions): the cost is the library's fixed set-up, not the length.

Besides its regular hours [open, close), a session has extended hours [extended_open,
extended_close) around them (pre-market and after hours, where vendors print minutes too), for the
calendars in ``EXTENDED_HOURS``; for any other calendar the extended hours are the regular ones.
"""

import datetime
import functools
import zoneinfo
from dataclasses import dataclass

import exchange_calendars
import numpy as np
import pandas as pd

from candleflow.market.intervals import DAILY

#: First day of every calendar unless configured otherwise (``PipelineSettings.calendar_start``).
DEFAULT_START = datetime.date(1990, 1, 1)

#: Extended trading hours, exchange wall-clock time, of the calendars that have known ones: every
#: session day from the first to the second (XNYS: pre-market from 04:00, after hours to 20:00).
EXTENDED_HOURS: dict[str, tuple[datetime.time, datetime.time]] = {
    "XNYS": (datetime.time(4, 0), datetime.time(20, 0)),
}


@dataclass(frozen=True)
class _SessionTable:
    days: np.ndarray  # datetime64[D], ascending
    opens: np.ndarray  # int64 epoch seconds UTC
    closes: np.ndarray  # int64 epoch seconds UTC
    extended_opens: np.ndarray  # int64 epoch seconds UTC, at or before opens
    extended_closes: np.ndarray  # int64 epoch seconds UTC, at or after closes
    timezone: str  # the exchange's time zone, e.g. America/New_York
    weekmask: str  # the weekdays it trades, Monday first, as numpy's busday functions take them
    close_offset: int  # 1 where a session closes on the local day after its date (24/7), else 0


def _epoch_seconds(utc_times: pd.Series) -> np.ndarray:
    return utc_times.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def _wall_clock(days: pd.DatetimeIndex, at: datetime.time, timezone: str) -> np.ndarray:
    """Epoch seconds of the wall-clock time ``at`` in ``timezone`` on each of ``days``."""
    local = days + pd.Timedelta(hours=at.hour, minutes=at.minute)
    return _epoch_seconds(local.tz_localize(timezone).to_series())


@functools.cache
def _session_table(calendar_name: str, start: datetime.date) -> _SessionTable:
    calendar = exchange_calendars.get_calendar(calendar_name, start=start)
    opens, closes = _epoch_seconds(calendar.opens), _epoch_seconds(calendar.closes)
    timezone = str(calendar.tz)
    extended_opens, extended_closes = opens, closes
    if calendar_name in EXTENDED_HOURS:
        first, last = EXTENDED_HOURS[calendar_name]
        extended_opens = _wall_clock(calendar.sessions, first, timezone)
        extended_closes = _wall_clock(calendar.sessions, last, timezone)
    return _SessionTable(
        days=calendar.sessions.to_numpy().astype("datetime64[D]"),
        opens=opens,
        closes=closes,
        extended_opens=extended_opens,
        extended_closes=extended_closes,
        timezone=timezone,
        weekmask=calendar.weekmask,
        close_offset=calendar.close_offset,
    )


#: What ``session_index`` gives a time outside every session's hours.
NO_SESSION, PREVIOUS_SESSION, NEXT_SESSION = "none", "previous", "next"


#: The hours of a session ``session_index`` can look at, by their columns in a sessions frame:
#: the regular hours, the extended hours, and the hours intraday bars are made of (the regular
#: ones, or the extended ones on an ``ExchangeSessions`` with ``extended_hours_bars``).
HOURS_COLUMNS = {"regular": ("open", "close"), "extended": ("extended_open", "extended_close"),
                 "bars": ("bar_open", "bar_close")}


def bar_hours(interval: str) -> str:
    """The hours bars of ``interval`` are made of: a daily bar is the regular session, as
    vendors' official daily bars are; intraday bars follow ``extended_hours_bars``."""
    return "regular" if interval == DAILY else "bars"


def session_index(
    times: np.ndarray, sessions: pd.DataFrame, *, hours: str = "regular", outside: str = NO_SESSION
) -> np.ndarray:
    """For each of ``times`` (epoch s), the position in ``sessions`` (a frame of
    ``ExchangeSessions.sessions``, ascending) of the session whose ``hours`` (``HOURS_COLUMNS``)
    [open, close) hold it. A time outside every session's hours gets -1 (``NO_SESSION``), the
    latest session that opened before it (``PREVIOUS_SESSION``; -1 if none) or the first session
    after it (``NEXT_SESSION``; ``len(sessions)`` if none). This is the one place that finds the
    session of a bar."""
    open_column, close_column = HOURS_COLUMNS[hours]
    opens = sessions[open_column].to_numpy(np.int64)
    closes = sessions[close_column].to_numpy(np.int64)
    k = np.searchsorted(opens, times, side="right") - 1
    if outside == PREVIOUS_SESSION:
        return k
    inside = (k >= 0) & (times < closes[np.maximum(k, 0)])
    if outside == NEXT_SESSION:
        return np.where(inside, k, k + 1)
    if outside != NO_SESSION:
        raise ValueError(f"outside must be one of {NO_SESSION}, {PREVIOUS_SESSION}, {NEXT_SESSION}")
    return np.where(inside, k, -1)


def _cron_days(days: set[int]) -> str:
    """Cron day-of-week field of ``days`` (Sunday = 0): ``*`` for every day, else runs of
    consecutive days as ranges (``1-5``)."""
    if len(days) == 7:
        return "*"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


#: The parts of a session (``candles.part``): before the open, the regular hours, after the close.
PRE, REGULAR, POST = "pre", "regular", "post"


def session_parts(times: np.ndarray, sessions: pd.DataFrame) -> np.ndarray:
    """For each of ``times`` (epoch s), the part of its session it is in: ``REGULAR`` inside the
    regular hours, ``PRE`` or ``POST`` in the extended hours before the open or after the close.
    (A time outside every session's extended hours counts as ``POST``; the bad-row rules refuse
    such bars before anything is stored.)"""
    session = session_index(times, sessions, hours="extended")
    opens = sessions["open"].to_numpy(np.int64)[np.maximum(session, 0)]
    regular = session_index(times, sessions) >= 0
    return np.where(regular, REGULAR, np.where((session >= 0) & (times < opens), PRE, POST))


class ExchangeSessions:
    """Sessions of one exchange calendar (default XNYS, the New York Stock Exchange) from ``start``."""

    def __init__(self, calendar_name: str = "XNYS", start: datetime.date = DEFAULT_START,
                 extended_hours_bars: bool = False) -> None:
        self.calendar_name = calendar_name
        #: Intraday bars made of the extended hours, aligned to their start (the frames' bar_open,
        #: bar_close are the extended hours), instead of the regular ones.
        self.extended_hours_bars = extended_hours_bars
        self._table = _session_table(calendar_name, start)

    @property
    def timezone(self) -> str:
        return self._table.timezone

    @property
    def weekmask(self) -> str:
        return self._table.weekmask

    @property
    def regular_session_seconds(self) -> int:
        """Length of the longest regular session in the calendar (XNYS: 6.5 h; early closes are
        shorter): how many intraday bars one session can hold."""
        return int((self._table.closes - self._table.opens).max())

    @property
    def bar_session_seconds(self) -> int:
        """Length of the longest session's hours that intraday bars are made of."""
        t = self._table
        if not self.extended_hours_bars:
            return self.regular_session_seconds
        return int((t.extended_closes - t.extended_opens).max())

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
                "extended_open": t.extended_opens[lo:hi],
                "extended_close": t.extended_closes[lo:hi],
                "bar_open": (t.extended_opens if self.extended_hours_bars else t.opens)[lo:hi],
                "bar_close": (t.extended_closes if self.extended_hours_bars else t.closes)[lo:hi],
            }
        )

    def sessions(self, start: datetime.date, end: datetime.date) -> pd.DataFrame:
        """Sessions in [start, end], ascending: session (date), open and close (epoch seconds) of
        the regular hours, extended_open and extended_close of the extended hours, bar_open and
        bar_close of the hours intraday bars are made of."""
        days = self._table.days
        lo = np.searchsorted(days, self._check_in_range(start), side="left")
        hi = np.searchsorted(days, self._check_in_range(end), side="right")
        return self._frame(lo, max(lo, hi))

    def sessions_near(self, first_bar: int, last_bar: int) -> pd.DataFrame:
        """The sessions from the UTC day before ``first_bar`` to the day after ``last_bar`` (epoch
        s), clipped to the calendar's range: every session whose extended hours can hold a bar
        between them."""
        day = datetime.timedelta(days=1)
        first = datetime.datetime.fromtimestamp(first_bar, datetime.UTC).date() - day
        last = datetime.datetime.fromtimestamp(last_bar, datetime.UTC).date() + day
        return self.sessions(self._clamped(first), self._clamped(last))

    def _clamped(self, d: datetime.date) -> datetime.date:
        return min(max(d, self.first_session), self.last_session)

    def sessions_ending(self, last: datetime.date, count: int, clamp: bool = False) -> pd.DataFrame:
        """The ``count`` sessions up to and including ``last`` (the latest ones on or before it);
        with ``clamp``, fewer where the calendar starts later, else ValueError."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        hi = np.searchsorted(self._table.days, self._check_in_range(last), side="right")
        if hi < count and not clamp:
            raise ValueError(
                f"only {hi} {self.calendar_name} sessions on or before {last} in the calendar "
                f"range (starts {self.first_session}); {count} requested"
            )
        return self._frame(max(hi - count, 0), hi)

    def is_session(self, d: datetime.date) -> bool:
        day = self._check_in_range(d)
        i = np.searchsorted(self._table.days, day)
        return bool(self._table.days[i] == day)

    def typical_close(self) -> datetime.time:
        """The most common local close time of the calendar's last year of sessions, the year
        ahead of today: an exchange that changed its hours (Tokyo, 15:00 to 15:30 in November
        2024) has its new close."""
        t = self._table
        recent = t.closes[t.days >= t.days[-1] - np.timedelta64(365, "D")]
        local = pd.to_datetime(recent, unit="s", utc=True).tz_convert(self.timezone)
        return pd.Series(local.time).mode().iloc[0]

    def cron_after_close(self, delay: datetime.timedelta) -> str:
        """Cron expression, in the exchange's time zone, of ``delay`` after the typical close on
        each day of the week a session closes on (XNYS, 5 minutes: ``5 16 * * 1-5``)."""
        monday = datetime.datetime(2024, 1, 1)
        at = datetime.datetime.combine(monday, self.typical_close()) + delay
        shift = self._table.close_offset + (at - monday).days
        # Python counts weekdays from Monday = 0, cron from Sunday = 0: hence the + 1.
        days = {(day + shift + 1) % 7 for day, trades in enumerate(self.weekmask) if trades == "1"}
        return f"{at.minute} {at.hour} * * {_cron_days(days)}"

    def session_day_of_close(self, at: datetime.datetime) -> datetime.date:
        """The day of the session that closes on the exchange's local date of ``at`` (tz-aware),
        whether or not that day is a session: the local date, less a day for a calendar whose
        sessions close on the day after their date (24/7 closes at midnight UTC)."""
        local = at.astimezone(zoneinfo.ZoneInfo(self.timezone)).date()
        return local - datetime.timedelta(days=self._table.close_offset)

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
