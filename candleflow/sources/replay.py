"""Replay a stored or synthetic session into a landing folder, one minute at a time.

Each minute becomes one CSV file per symbol, ``SYMBOL_YYYYMMDDTHHMM.csv`` (the minute's UTC
start), in the documented landing-file format, so a replay takes exactly the path live files take:
the landing sensor, or a direct run per minute (``candleflow replay``).
"""

import time as time_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL
from candleflow.sources.landed import FILE_COLUMNS
from candleflow.sources.synthetic import SyntheticSource
from candleflow.store import CandleStore


@dataclass(frozen=True)
class LandedMinute:
    bar_start: int
    symbols: list[str]
    #: The earliest modification time of the minute's files: read files modified since then.
    landed_since_ns: int


def session_minutes(symbols: Sequence[str], session: date, calendar: ExchangeSessions,
                    seed: int = 7, store: CandleStore | None = None,
                    start: time | None = None, end: time | None = None) -> pd.DataFrame:
    """The session's 1m bars: the stored ones if ``store`` is given, else synthetic ones; only
    those starting from ``start`` and before ``end`` (exchange-local times) if given."""
    sessions = calendar.sessions(session, session)
    if sessions.empty:
        raise ValueError(f"{session} is not a trading session")
    if store is None:
        minutes = SyntheticSource(seed, BASE_INTERVAL, calendar).fetch(list(symbols), sessions).candles
    else:
        minutes = store.read_candles(list(symbols), BASE_INTERVAL, int(sessions["open"].iloc[0]),
                                     int(sessions["close"].iloc[0]))
    first = _epoch(session, start or time.min, calendar)
    last = _epoch(session, end, calendar) if end else int(sessions["close"].iloc[0])
    minutes = minutes[(minutes["bar_start"] >= first) & (minutes["bar_start"] < last)]
    if minutes.empty:
        source = "stored" if store is not None else "synthetic"
        raise ValueError(f"no {source} 1m bars of these symbols in the session {session}"
                         f"{f' from {start:%H:%M}' if start else ''}{f' to {end:%H:%M}' if end else ''}")
    return minutes.reset_index(drop=True)


def _epoch(session: date, at: time, calendar: ExchangeSessions) -> int:
    return int(datetime.combine(session, at, ZoneInfo(calendar.timezone)).timestamp())


def land_minute(landing_dir: Path, minute: pd.DataFrame) -> LandedMinute:
    """Write the rows of one minute as one file per symbol; returns what landed."""
    bar_start = int(minute["bar_start"].iloc[0])
    moment = datetime.fromtimestamp(bar_start, UTC)
    ts, stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y%m%dT%H%M")
    header = ",".join(FILE_COLUMNS) + "\n"
    earliest = None
    for row in minute.itertuples(index=False):
        path = landing_dir / f"{row.symbol}_{stamp}.csv"
        path.write_text(f"{header}{row.symbol},{ts},{row.open!r},{row.high!r},{row.low!r},"
                        f"{row.close!r},{row.volume!r}\n")
        mtime = path.stat().st_mtime_ns
        earliest = mtime if earliest is None else min(earliest, mtime)
    return LandedMinute(bar_start, minute["symbol"].astype(str).tolist(), earliest)


def replay(minutes: pd.DataFrame, landing_dir: str | Path, speed: float | None,
           sleep: Callable[[float], None] = time_module.sleep) -> Iterator[LandedMinute]:
    """Land ``minutes`` minute by minute, in time order; yields each minute once landed.

    ``speed``: session minutes per wall-clock second (1/60 = real time); None = as fast as
    possible. Whatever the caller does with a minute (a direct run) counts towards the pause
    before the next.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    landing = Path(landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    started = time_module.monotonic()
    for index, (_, minute) in enumerate(minutes.groupby("bar_start", sort=True)):
        yield land_minute(landing, minute)
        if speed is not None:
            sleep(max(0.0, started + (index + 1) / speed - time_module.monotonic()))
