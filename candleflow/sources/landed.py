"""Landed candle files one at a time: their names, the folder's listing, and reading one file.

File names start with the symbol: ``AAPL.csv``, ``AAPL_2024-03-08.parquet``, ``BRK.B_part2.csv``.
Columns (documented in docs/candle-sources.md): ``symbol``, ``ts`` (bar start, ISO 8601 with a UTC
offset, or a time-zone aware Parquet timestamp; for daily data also a date alone, ``2013-03-01``,
read as midnight UTC of that date), ``open``, ``high``, ``low``, ``close``, ``volume``.
``read_landed_file`` is the reference reader: whatever it refuses, it refuses with a message naming
the file and the problem. A file that links out of the landing folder is never read.
"""

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from candleflow.market.frames import OHLCV_COLUMNS
from candleflow.market.symbols import SymbolError, validate_symbol

SUFFIXES = (".csv", ".parquet")
FILE_COLUMNS = ("symbol", "ts", *OHLCV_COLUMNS)
UTC_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")
DATE_ONLY = re.compile(r"\d{4}-\d\d-\d\d")
#: Why a date alone is refused in 1m data.
DATE_WITHOUT_TIME = "is a date without a time; only daily data (base interval 1d) is stamped by date"


class MalformedFile(ValueError):
    """A landed file that cannot be read as candles; the message names the file and the problem."""


@dataclass(frozen=True)
class LandedFile:
    symbol: str
    path: Path
    mtime_ns: int


@dataclass(frozen=True)
class RefusedFile:
    """A candle file that is not read: ``message`` names it and says why; ``symbol`` is the symbol
    of its name, None when the name holds none."""

    symbol: str | None
    message: str


def symbol_of(path: Path) -> str:
    """The symbol a landed file belongs to, from its name (raises SymbolError if malformed)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return validate_symbol(stem.split("_", 1)[0])


def landed_files(landing_dir: str | Path,
                 modified_since_ns: int = 0) -> tuple[list[LandedFile], list[RefusedFile]]:
    """Candle files in ``landing_dir`` modified at or after ``modified_since_ns`` (sorted by name),
    and such files that are refused: a name without a valid symbol, a link out of the folder.

    A landing folder holds a file per symbol per minute (nearly a million by the close), so only
    the files that pass the time filter are looked at further.
    """
    folder = Path(landing_dir).resolve()
    files, refused = [], []
    for entry, mtime_ns in entries_since(landing_dir, SUFFIXES, modified_since_ns):
        landed = _landed_or_refused(entry, mtime_ns, folder)
        (files if isinstance(landed, LandedFile) else refused).append(landed)
    files.sort(key=lambda landed: landed.path.name)
    return files, sorted(refused, key=lambda refusal: refusal.message)


def entries_since(landing_dir: str | Path, suffixes: tuple[str, ...],
                  modified_since_ns: int) -> Iterator[tuple[os.DirEntry, int]]:
    """The files in ``landing_dir`` whose names end with one of ``suffixes``, modified at or
    after ``modified_since_ns``, with their modification times. (scandir: the listing types each
    entry, so only the files' times cost a stat call.)"""
    with os.scandir(landing_dir) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(suffixes) or not entry.is_file():
                continue
            mtime_ns = entry.stat().st_mtime_ns
            if mtime_ns >= modified_since_ns:
                yield entry, mtime_ns


def _landed_or_refused(entry: os.DirEntry, mtime_ns: int, folder: Path) -> LandedFile | RefusedFile:
    """The landed file of ``entry``, or why it is refused. Only a symbolic link costs a look at
    where it leads (the entry's type comes with the listing)."""
    path = Path(entry.path)
    try:
        symbol = symbol_of(path)
    except SymbolError as exc:
        return RefusedFile(None, f"{path.name}: {exc}")
    if links_out(entry, folder):
        return RefusedFile(symbol, f"{path.name}: links to a file outside the landing folder; not read")
    return LandedFile(symbol, path, mtime_ns)


def links_out(entry: os.DirEntry, folder: Path) -> bool:
    """Whether ``entry`` is a symbolic link to a file outside ``folder`` (never read)."""
    return entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(folder)


def _read_table(path: Path) -> pd.DataFrame:
    """Parquet with its column types; CSV with every column as text, once each line is known to
    have as many fields as the header (pandas pads a short line, and takes the first field of
    lines with one too many for an index)."""
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        text = path.read_text(encoding="utf-8")
        misshapen = _misshapen_line(text)
        if misshapen is None:
            return pd.read_csv(io.StringIO(text), dtype=str)
    except Exception as exc:  # the parsers raise many types; all mean "not a readable table"
        raise MalformedFile(f"{path.name}: not a readable {path.suffix[1:]} file ({exc})") from None
    line, fields, header = misshapen
    raise MalformedFile(f"{path.name}: line {line} has {fields} fields, the header has {header}")


def _misshapen_line(text: str) -> tuple[int, int, int] | None:
    """(line number, fields, header fields) of the first CSV line whose number of fields is not the
    header's; blank lines are skipped, as pandas skips them."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, [])
    for row in rows:
        blank = len(row) <= 1 and not "".join(row).strip()
        if not blank and len(row) != len(header):
            return rows.line_num, len(row), len(header)
    return None


def _utc_seconds(ts: pd.Series, path: Path, daily: bool) -> np.ndarray:
    missing = ts.isna().to_numpy()
    if missing.any():
        raise MalformedFile(f"{path.name}: ts is missing in row {np.flatnonzero(missing)[0] + 1}")
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        parsed = ts
    elif pd.api.types.is_datetime64_any_dtype(ts.dtype):
        raise MalformedFile(f"{path.name}: column ts has no time zone")
    else:
        text = ts.astype(str).str.strip()
        dates = text.str.fullmatch(DATE_ONLY)
        naive = ~text.str.contains(UTC_OFFSET) & ~dates
        if naive.any():
            raise MalformedFile(f"{path.name}: ts {text[naive].iloc[0]!r} has no UTC offset")
        if not daily and dates.any():
            raise MalformedFile(f"{path.name}: ts {text[dates].iloc[0]!r} {DATE_WITHOUT_TIME}")
        try:  # a date alone becomes midnight UTC, which the daily source reads as that date
            parsed = pd.to_datetime(text.mask(dates, text + "T00:00:00Z"), utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise MalformedFile(f"{path.name}: column ts is not ISO 8601 ({exc})") from None
    return (parsed.dt.tz_convert("UTC").astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def _numbers(values: pd.Series, column: str, path: Path) -> np.ndarray:
    """A price or volume column as float64. CSV columns are text, parsed value by value; a Parquet
    column has a type, and one that is not a number is refused whole (``True`` is not a price)."""
    kind = _not_a_number_type(values) if path.suffix.lower() == ".parquet" else None
    if kind:
        raise MalformedFile(f"{path.name}: column {column} is {kind}, not a number")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise MalformedFile(f"{path.name}: {column} {values[bad].iloc[0]!r} is not a number")
    return numbers.astype("float64").to_numpy()


def _not_a_number_type(values: pd.Series) -> str | None:
    """What the type of a typed column is when it is not a number type, else None."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "a time stamp"
    if pd.api.types.is_string_dtype(values):
        return "text"
    return f"of type {values.dtype}"


def read_landed_file(landed: LandedFile, *, daily: bool = False) -> pd.DataFrame:
    """One file as symbol, bar_start (epoch s, UTC, as given) and OHLCV columns, in file order.

    ``daily``: the file holds daily bars, which may be stamped by a date alone.

    In messages, row N is the N-th row of data, and line N the N-th line of a CSV file (the header
    is line 1).
    """
    path = landed.path
    table = _read_table(path)
    missing = [c for c in FILE_COLUMNS if c not in table.columns]
    if missing:
        raise MalformedFile(f"{path.name}: missing column(s) {', '.join(missing)}")
    other = table.loc[table["symbol"] != landed.symbol, "symbol"]
    if len(other):
        raise MalformedFile(f"{path.name}: row for symbol {other.iloc[0]!r} in a file of {landed.symbol}")
    frame = pd.DataFrame({"symbol": landed.symbol, "bar_start": _utc_seconds(table["ts"], path, daily)})
    for column in OHLCV_COLUMNS:
        frame[column] = _numbers(table[column], column, path)
    return frame
