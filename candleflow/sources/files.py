"""A landing folder of CSV or Parquet candle files (format: ``candleflow.sources.landed``).

With base interval 1d, ``ts`` may be a date or any time of the session day; the bar is stamped with
that session's open.

A source built with ``landed_since_ns`` reads only the files modified since then (what a landing
sensor saw arrive), not every file ever landed; a symbol with no such file has nothing new
(``SourceBatch.unchanged``), which is not an error. A folder's 1m data is as current as its latest
minute: without an explicit window, a batch's ``as_of`` is its latest 1m bar + 60 s, so a replayed
session's bars stay incomplete until their minutes have been delivered.

CSV files with the documented header are parsed together (``csv_batch``); the others, and any
file that path refuses, one by one, so a malformed file fails only its own symbol, with a message
naming the file. So does a file that ``landed_files`` refuses (a link out of the folder).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.sources.base import CandleSource, SourceBatch
from candleflow.sources.csv_batch import read_csv_batch
from candleflow.sources.landed import LandedFile, MalformedFile, landed_files, read_landed_file


class FileSource(CandleSource):
    def __init__(self, landing_dir: str | Path, base_interval: str = BASE_INTERVAL,
                 calendar: ExchangeSessions | None = None, landed_since_ns: int = 0):
        if base_interval not in (BASE_INTERVAL, DAILY):
            raise ValueError(f"files source base_interval must be 1m or 1d, not {base_interval!r}")
        self.landing_dir = Path(landing_dir)
        self.base_interval = base_interval
        self.calendar = calendar or ExchangeSessions()
        self.landed_since_ns = landed_since_ns

    def fetch(self, symbols: Sequence[str], sessions: pd.DataFrame | None) -> SourceBatch:
        files, errors = self._files_of(symbols)
        landed = {f.symbol for f in files} | set(errors)
        without_files = [s for s in symbols if s not in landed]
        unchanged = without_files  # nothing landed since the mark: nothing new
        if not self.landed_since_ns:
            errors |= {s: f"no landed file for {s} in {self.landing_dir}" for s in without_files}
            unchanged = []
        rows = self._stamped(_without(self._read(files, errors), errors), errors)
        if sessions is not None:  # the window's sessions, extended hours included
            first, last = int(sessions["extended_open"].iloc[0]), int(sessions["extended_close"].iloc[-1])
            rows = rows[(rows["bar_start"] >= first) & (rows["bar_start"] < last)]
        candles = rows.reset_index(drop=True).assign(
            minutes=1 if self.base_interval == BASE_INTERVAL else 0, complete=True)
        as_of = None
        if sessions is None and self.base_interval == BASE_INTERVAL and len(candles):
            as_of = int(candles["bar_start"].max()) + 60
        return SourceBatch(candles, errors, as_of, unchanged)

    def _files_of(self, symbols: Sequence[str]) -> tuple[list[LandedFile], dict[str, str]]:
        """The files of ``symbols`` landed since ``landed_since_ns``, in the order of ``symbols``,
        then by name (the order their rows are delivered in), and the first refusal of each symbol
        with a refused file (a link out of the folder): that symbol fails whole, none of its files
        is read."""
        order = {symbol: position for position, symbol in enumerate(symbols)}
        files, refused = landed_files(self.landing_dir, self.landed_since_ns)
        errors: dict[str, str] = {}
        for refusal in refused:
            if refusal.symbol in order:
                errors.setdefault(refusal.symbol, refusal.message)
        return sorted((f for f in files if f.symbol in order and f.symbol not in errors),
                      key=lambda f: order[f.symbol]), errors

    def _read(self, files: list[LandedFile], errors: dict[str, str]) -> pd.DataFrame:
        """Symbol, bar_start and OHLCV rows of ``files``, in their order; the first problem of a
        symbol's files goes to ``errors``."""
        batch, left = read_csv_batch(files)
        position = {landed.path: index for index, landed in enumerate(files)}
        frames = [batch]
        for landed in left:
            try:
                frames.append(read_landed_file(landed, daily=self.base_interval == DAILY).assign(file=position[landed.path]))
            except MalformedFile as exc:
                errors.setdefault(landed.symbol, str(exc))
        rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else batch
        return rows.sort_values("file", kind="stable").drop(columns="file")

    def _stamped(self, rows: pd.DataFrame, errors: dict[str, str]) -> pd.DataFrame:
        """1m bars must start on a minute; a daily bar is stamped with its session's open. A
        symbol with a bar that does neither fails whole (its problem goes to ``errors``).

        A daily bar's session is the exchange-local date of its stamp, except for a stamp at
        midnight UTC (a date alone, or how many vendors stamp daily bars), which names its UTC
        date: read in New York time it would be the evening before."""
        if self.base_interval == DAILY and len(rows):
            days = _session_days(rows["bar_start"], self.calendar.timezone)
            sessions = self.calendar.sessions_near(int(rows["bar_start"].min()), int(rows["bar_start"].max()))
            opens = days.map(dict(zip(sessions["session"], sessions["open"])))
            off = opens.isna()
            for symbol, day in days[off].groupby(rows.loc[off, "symbol"]).min().items():
                errors[symbol] = f"{symbol}: {self._not_a_session(day)}"
            rows = rows.assign(bar_start=opens.fillna(0).astype(np.int64))
        elif self.base_interval == BASE_INTERVAL:
            off = rows["bar_start"] % 60 != 0
            for symbol, bar_start in rows[off].groupby("symbol", sort=False)["bar_start"].first().items():
                errors[symbol] = f"{symbol}: 1m bar at epoch {bar_start} is not on a minute"
        return _without(rows, errors)

    def _not_a_session(self, day) -> str:
        calendar = self.calendar
        if not calendar.first_session <= day <= calendar.last_session:
            return (f"{day} is outside the {calendar.calendar_name} calendar range "
                    f"{calendar.first_session}..{calendar.last_session} (setting calendar_start)")
        return f"{day} is not a trading session"


def _session_days(bar_starts: pd.Series, timezone: str) -> pd.Series:
    """The date each daily bar's stamp names (see ``FileSource._stamped``)."""
    stamps = pd.to_datetime(bar_starts, unit="s", utc=True)
    local_days = stamps.dt.tz_convert(timezone).dt.date
    return local_days.where(bar_starts % 86400 != 0, stamps.dt.date)


def _without(rows: pd.DataFrame, errors: dict[str, str]) -> pd.DataFrame:
    return rows[~rows["symbol"].isin(list(errors))] if errors else rows
