"""A landing folder of CSV or Parquet candle files.

File names start with the symbol: ``AAPL.csv``, ``AAPL_2024-03-08.parquet``, ``BRK.B_part2.csv``.
Columns (documented in README.md): ``symbol``, ``ts`` (bar start, ISO 8601 with a UTC offset, or a
time-zone aware Parquet timestamp), ``open``, ``high``, ``low``, ``close``, ``volume``. With base
interval 1d, ``ts`` may be a date or any time of the session day; the bar is stamped with that
session's open.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import OHLCV_COLUMNS
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.market.symbols import SymbolError, validate_symbol
from candleflow.sources.base import CandleSource, SourceBatch

SUFFIXES = (".csv", ".parquet")
FILE_COLUMNS = ("symbol", "ts", *OHLCV_COLUMNS)
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


class MalformedFile(ValueError):
    """A landed file that cannot be read as candles; the message names the file and the problem."""


@dataclass(frozen=True)
class LandedFile:
    symbol: str
    path: Path
    mtime_ns: int


def symbol_of(path: Path) -> str:
    """The symbol a landed file belongs to, from its name (raises SymbolError if malformed)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return validate_symbol(stem.split("_", 1)[0])


def landed_files(landing_dir: str | Path) -> tuple[list[LandedFile], list[str]]:
    """Candle files in ``landing_dir`` (sorted by name), and problems with names that are not."""
    files, problems = [], []
    for path in sorted(Path(landing_dir).glob("*")):
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            files.append(LandedFile(symbol_of(path), path, path.stat().st_mtime_ns))
        except SymbolError as exc:
            problems.append(f"{path.name}: {exc}")
    return files, problems


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"symbol": str, "ts": str})
    except Exception as exc:  # the parsers raise many types; all mean "not a readable table"
        raise MalformedFile(f"{path.name}: not a readable {path.suffix[1:]} file ({exc})") from None


def _utc_seconds(ts: pd.Series, path: Path) -> np.ndarray:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        parsed = ts
    elif pd.api.types.is_datetime64_any_dtype(ts.dtype):
        raise MalformedFile(f"{path.name}: column ts has no time zone")
    else:
        text = ts.astype(str).str.strip()
        naive = ~text.str.contains(_OFFSET)
        if naive.any():
            raise MalformedFile(f"{path.name}: ts {text[naive].iloc[0]!r} has no UTC offset")
        try:
            parsed = pd.to_datetime(text, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise MalformedFile(f"{path.name}: column ts is not ISO 8601 ({exc})") from None
    return (parsed.dt.tz_convert("UTC").astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def read_landed_file(landed: LandedFile) -> pd.DataFrame:
    """One file as symbol, bar_start (epoch s, UTC, as given) and OHLCV columns, in file order."""
    path = landed.path
    table = _read_table(path)
    missing = [c for c in FILE_COLUMNS if c not in table.columns]
    if missing:
        raise MalformedFile(f"{path.name}: missing column(s) {', '.join(missing)}")
    other = table.loc[table["symbol"] != landed.symbol, "symbol"]
    if len(other):
        raise MalformedFile(f"{path.name}: row for symbol {other.iloc[0]!r} in a file of {landed.symbol}")
    frame = pd.DataFrame({"symbol": landed.symbol, "bar_start": _utc_seconds(table["ts"], path)})
    for column in OHLCV_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            raise MalformedFile(f"{path.name}: {column} {table[column][bad].iloc[0]!r} is not a number")
        frame[column] = values.astype("float64").to_numpy()
    return frame


class FileSource(CandleSource):
    def __init__(self, landing_dir: str | Path, base_interval: str = BASE_INTERVAL,
                 calendar: ExchangeSessions | None = None):
        if base_interval not in (BASE_INTERVAL, DAILY):
            raise ValueError(f"files source base_interval must be 1m or 1d, not {base_interval!r}")
        self.landing_dir = Path(landing_dir)
        self.base_interval = base_interval
        self.calendar = calendar or ExchangeSessions()

    def fetch(self, symbols: Sequence[str], sessions: pd.DataFrame | None) -> SourceBatch:
        files, _ = landed_files(self.landing_dir)
        by_symbol: dict[str, list[LandedFile]] = {}
        for landed in files:
            by_symbol.setdefault(landed.symbol, []).append(landed)
        frames, errors = [], {}
        for symbol in symbols:
            if symbol not in by_symbol:
                errors[symbol] = f"no landed file for {symbol} in {self.landing_dir}"
                continue
            try:
                frame = pd.concat([read_landed_file(f) for f in by_symbol[symbol]], ignore_index=True)
                frames.append(self._in_sessions(frame, sessions))
            except MalformedFile as exc:
                errors[symbol] = str(exc)
        candles = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["symbol", "bar_start", *OHLCV_COLUMNS])
        if self.base_interval == BASE_INTERVAL:
            candles = candles.assign(minutes=1, complete=True)
        else:
            candles = candles.assign(minutes=0, complete=True)
        return SourceBatch(candles, errors)

    def _in_sessions(self, frame: pd.DataFrame, sessions: pd.DataFrame | None) -> pd.DataFrame:
        if self.base_interval == DAILY:
            frame = frame.assign(bar_start=self._daily_session_opens(frame))
        elif (frame["bar_start"] % 60 != 0).any():
            bad = frame.loc[frame["bar_start"] % 60 != 0].iloc[0]
            raise MalformedFile(f"{bad['symbol']}: 1m bar at epoch {bad['bar_start']} is not on a minute")
        if sessions is None:
            return frame
        first_open, last_close = int(sessions["open"].iloc[0]), int(sessions["close"].iloc[-1])
        inside = (frame["bar_start"] >= first_open) & (frame["bar_start"] < last_close)
        return frame.loc[inside]

    def _daily_session_opens(self, frame: pd.DataFrame) -> np.ndarray:
        days = pd.to_datetime(frame["bar_start"], unit="s", utc=True).dt.tz_convert(
            self.calendar.timezone).dt.date
        sessions = self.calendar.sessions(min(days), max(days))
        opens = dict(zip(sessions["session"], sessions["open"]))
        not_sessions = sorted({d for d in days if d not in opens})
        if not_sessions:
            raise MalformedFile(f"{frame['symbol'].iloc[0]}: {not_sessions[0]} is not a trading session")
        return np.array([opens[d] for d in days], dtype=np.int64)
