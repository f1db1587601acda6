"""Landed candle files one at a time: their names, the folder's listing, and reading one file.

File names start with the symbol: ``AAPL.csv``, ``AAPL_2024-03-08.parquet``, ``BRK.B_part2.csv``.
Columns (documented in README.md): ``symbol``, ``ts`` (bar start, ISO 8601 with a UTC offset, or a
time-zone aware Parquet timestamp), ``open``, ``high``, ``low``, ``close``, ``volume``.
``read_landed_file`` is the reference reader: whatever it refuses, it refuses with a message naming
the file and the problem.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from candleflow.market.frames import OHLCV_COLUMNS
from candleflow.market.symbols import SymbolError, validate_symbol

SUFFIXES = (".csv", ".parquet")
FILE_COLUMNS = ("symbol", "ts", *OHLCV_COLUMNS)
UTC_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


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


def landed_files(landing_dir: str | Path, modified_since_ns: int = 0) -> tuple[list[LandedFile], list[str]]:
    """Candle files in ``landing_dir`` modified at or after ``modified_since_ns`` (sorted by name),
    and problems with such files' names.

    A landing folder holds a file per symbol per minute (nearly a million by the close), so only
    the files that pass the time filter are looked at further.
    """
    files, problems = [], []
    with os.scandir(landing_dir) as entries:  # scandir: no extra stat call per file to type it
        for entry in entries:
            if not entry.name.lower().endswith(SUFFIXES) or not entry.is_file():
                continue
            mtime_ns = entry.stat().st_mtime_ns
            if mtime_ns < modified_since_ns:
                continue
            path = Path(entry.path)
            try:
                files.append(LandedFile(symbol_of(path), path, mtime_ns))
            except SymbolError as exc:
                problems.append(f"{path.name}: {exc}")
    files.sort(key=lambda landed: landed.path.name)
    return files, sorted(problems)


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
        naive = ~text.str.contains(UTC_OFFSET)
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
