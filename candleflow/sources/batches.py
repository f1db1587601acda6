"""From the rows a file source read to its ``SourceBatch``: bar stamps checked, daily bars put on
their session, the window applied. Shared by every source that reads files."""

import numpy as np
import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.sources.base import SourceBatch


def finished_batch(rows: pd.DataFrame, errors: dict[str, str], unchanged: list[str],
                   sessions: pd.DataFrame | None, base_interval: str,
                   calendar: ExchangeSessions, files: list[str]) -> SourceBatch:
    """The batch of ``rows`` (symbol, bar_start, OHLCV and ``file``, the position of the row's
    file in ``files``, in delivery order) without the symbols in
    ``errors``; a symbol whose stamps are off fails whole (its problem goes to ``errors``). Inside
    the days of ``sessions`` if given (``window_days``); else a batch of 1m data is as current as its
    latest minute (``as_of``), so a replayed session's bars stay open until their minutes are in."""
    rows = _stamped(without(rows, errors), errors, base_interval, calendar)
    if sessions is not None:
        first, last = window_days(sessions, calendar.timezone)
        rows = rows[(rows["bar_start"] >= first) & (rows["bar_start"] < last)]
    candles = rows.reset_index(drop=True).assign(minutes=1 if base_interval == BASE_INTERVAL else 0,
                                                 complete=True)
    as_of = None
    if sessions is None and base_interval == BASE_INTERVAL and len(candles):
        as_of = int(candles["bar_start"].max()) + 60
    return SourceBatch(candles, errors, as_of, unchanged, files)


def window_days(sessions: pd.DataFrame, timezone: str) -> tuple[int, int]:
    """[first, last) epoch s of the exchange-local days of ``sessions``, extended hours included:
    what a run over them reads from a file. A bar of those days outside every session (03:30 New
    York) is kept, for the bad-row rules to refuse it by name, not dropped unseen."""
    first_day = pd.Timestamp(sessions["session"].iloc[0]).tz_localize(timezone)
    after_last = (pd.Timestamp(sessions["session"].iloc[-1]) + pd.Timedelta(days=1)).tz_localize(timezone)
    return (min(first_day.value // 10**9, int(sessions["extended_open"].iloc[0])),
            max(after_last.value // 10**9, int(sessions["extended_close"].iloc[-1])))


def without(rows: pd.DataFrame, errors: dict[str, str]) -> pd.DataFrame:
    """``rows`` without those of the symbols in ``errors``."""
    return rows[~rows["symbol"].isin(list(errors))] if errors else rows


def _stamped(rows: pd.DataFrame, errors: dict[str, str], base_interval: str,
             calendar: ExchangeSessions) -> pd.DataFrame:
    """1m bars must start on a minute; a daily bar is stamped with its session's open.

    A daily bar's session is the exchange-local date of its stamp, except for a stamp at midnight
    UTC (a date alone, or how many vendors stamp daily bars), which names its UTC date: read in
    New York time it would be the evening before."""
    if base_interval == DAILY and len(rows):
        days = _session_days(rows["bar_start"], calendar.timezone)
        sessions = calendar.sessions_near(int(rows["bar_start"].min()), int(rows["bar_start"].max()))
        opens = days.map(dict(zip(sessions["session"], sessions["open"])))
        off = opens.isna()
        for symbol, day in days[off].groupby(rows.loc[off, "symbol"]).min().items():
            errors[symbol] = f"{symbol}: {_not_a_session(day, calendar)}"
        rows = rows.assign(bar_start=opens.fillna(0).astype(np.int64))
    elif base_interval == BASE_INTERVAL:
        off = rows["bar_start"] % 60 != 0
        for symbol, bar_start in rows[off].groupby("symbol", sort=False)["bar_start"].first().items():
            errors[symbol] = f"{symbol}: 1m bar at epoch {bar_start} is not on a minute"
    return without(rows, errors)


def _not_a_session(day, calendar: ExchangeSessions) -> str:
    if not calendar.first_session <= day <= calendar.last_session:
        return (f"{day} is outside the {calendar.calendar_name} calendar range "
                f"{calendar.first_session}..{calendar.last_session} (setting calendar_start)")
    return f"{day} is not a trading session"


def _session_days(bar_starts: pd.Series, timezone: str) -> pd.Series:
    """The date each daily bar's stamp names (see ``_stamped``)."""
    stamps = pd.to_datetime(bar_starts, unit="s", utc=True)
    local_days = stamps.dt.tz_convert(timezone).dt.date
    return local_days.where(bar_starts % 86400 != 0, stamps.dt.date)
