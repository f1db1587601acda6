"""Candle files in a vendor's layout (``candleflow.sources.layouts``): day files holding every
ticker, Databento exports, CSV or Parquet exports described by a mapping file.

Read with pyarrow, by column name and only the layout's columns; the run's symbols are kept before
anything is converted (a Polygon day file holds about 10,000 tickers and millions of rows, a run a
fraction of them), and no Python object is built per row. A problem of a whole file (unreadable,
a missing column) fails every symbol the run asked of it; a problem of a row (a value that is not
a number, a time that cannot be read or is not on a minute) fails only that row's symbol, with a
message naming the file, the symbol, the value and its row.
"""

import csv
import datetime
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from isal import igzip

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.market.symbols import SymbolError
from candleflow.sources.base import CandleSource, SourceBatch
from candleflow.sources.batches import finished_batch
from candleflow.sources.landed import (
    DATE_ONLY,
    DATE_WITHOUT_TIME,
    UTC_OFFSET,
    MalformedFile,
    entries_since,
    links_out,
    symbol_of,
)
from candleflow.sources.layouts import SUFFIXES, TIME_UNITS, TableLayout, day_in_name


@dataclass(frozen=True)
class TableFile:
    path: Path
    mtime_ns: int
    #: The date in the file's name (day files), else None.
    day: datetime.date | None
    #: The symbol of the file's name, for layouts without a symbol column.
    symbol: str | None
    #: Why the file is not read (a link out of the folder, no symbol in its name), else empty.
    refusal: str = ""


def table_files(landing_dir: str | Path, layout: TableLayout, modified_since_ns: int = 0) -> list[TableFile]:
    """The candle files of ``layout`` in ``landing_dir`` modified at or after ``modified_since_ns``,
    sorted by name (so day files by date), refused ones included with their reason."""
    folder = Path(landing_dir).resolve()
    files = [_table_file(entry, mtime_ns, folder, layout)
             for entry, mtime_ns in entries_since(landing_dir, SUFFIXES, modified_since_ns)]
    return sorted(files, key=lambda file: file.path.name)


def _table_file(entry: os.DirEntry, mtime_ns: int, folder: Path, layout: TableLayout) -> TableFile:
    path = Path(entry.path)
    symbol, refusal = None, ""
    if not layout.symbol:
        try:
            symbol = symbol_of(path)
        except SymbolError as exc:
            refusal = f"{path.name}: {exc}"
    if links_out(entry, folder):
        refusal = f"{path.name}: links to a file outside the landing folder; not read"
    return TableFile(path, mtime_ns, day_in_name(path.name), symbol, refusal)


class TableSource(CandleSource):
    """A landing folder of files in one ``TableLayout``."""

    def __init__(self, landing_dir: str | Path, layout: TableLayout, base_interval: str = BASE_INTERVAL,
                 calendar: ExchangeSessions | None = None, landed_since_ns: int = 0):
        if base_interval not in (BASE_INTERVAL, DAILY):
            raise ValueError(f"files source base_interval must be 1m or 1d, not {base_interval!r}")
        self.landing_dir = Path(landing_dir)
        self.layout = layout
        self.base_interval = base_interval
        self.calendar = calendar or ExchangeSessions()
        self.landed_since_ns = landed_since_ns

    def fetch(self, symbols: Sequence[str], sessions: pd.DataFrame | None) -> SourceBatch:
        errors: dict[str, str] = {}
        files = self._files_for(symbols, sessions, errors)
        frames = []
        for position, file in enumerate(files):
            asked = [file.symbol] if file.symbol else symbols
            if file.refusal:
                _fail(errors, asked, file.refusal)
                continue
            try:
                rows, problems = read_table_file(file, self.layout, symbols, self.base_interval == DAILY)
            except MalformedFile as exc:
                _fail(errors, asked, str(exc))
                continue
            for symbol, problem in problems.items():
                errors.setdefault(symbol, problem)
            frames.append(rows.assign(file=position))
        rows = pd.concat(frames, ignore_index=True) if frames else _no_rows()
        in_run_order = np.lexsort((rows["file"].to_numpy(), rows["order"].to_numpy()))  # stable
        rows = rows.iloc[in_run_order].drop(columns="order").reset_index(drop=True)
        delivered = set(rows["symbol"].unique())
        absent = [s for s in symbols if s not in errors and s not in delivered]
        unchanged = absent if self.landed_since_ns else []
        if not self.landed_since_ns:
            names = ", ".join(f.path.name for f in files) or "no file"
            _fail(errors, absent, f"no rows in the {self.layout.name} files of {self.landing_dir} ({names})",
                  prefix=True)
        return finished_batch(rows, errors, unchanged, sessions, self.base_interval, self.calendar,
                              [file.path.name for file in files])

    def _files_for(self, symbols: Sequence[str], sessions: pd.DataFrame | None,
                   errors: dict[str, str]) -> list[TableFile]:
        """The landed files a run over ``symbols`` and ``sessions`` reads: with a symbol column,
        all of them (day files: those of the window's days); else those of ``symbols``. A window
        day without its day file fails every symbol (the run would silently miss a day)."""
        asked = set(symbols)
        files = [f for f in table_files(self.landing_dir, self.layout, self.landed_since_ns)
                 if f.symbol is None or f.symbol in asked]
        if not (self.layout.by_day and sessions is not None):
            return files
        days = set(sessions["session"])
        files = [f for f in files if f.day in days]
        if not self.landed_since_ns:
            for day in sorted(days - {f.day for f in files}):
                _fail(errors, symbols, f"no day file for {day} in {self.landing_dir}", prefix=True)
        return files


def _fail(errors: dict[str, str], symbols: Collection[str], message: str, prefix: bool = False) -> None:
    for symbol in symbols:
        errors.setdefault(symbol, f"{symbol}: {message}" if prefix else message)


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "bar_start": pd.Series(dtype=np.int64),
                         **{c: pd.Series(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")},
                         "order": pd.Series(dtype=np.int64), "file": pd.Series(dtype=np.int64)})


def read_table_file(file: TableFile, layout: TableLayout, symbols: Sequence[str],
                    daily: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of ``symbols`` in ``file`` (symbol, bar_start in epoch s, OHLCV, and ``order``:
    the symbol's position in ``symbols``; file order), and the first problem of each symbol whose
    rows have one (those rows are left out; the symbol fails). Raises MalformedFile for a problem
    of the whole file."""
    table, order, line = _read_columns(file, layout, symbols)
    symbol = pa.array(list(symbols), pa.string()).take(pa.array(order)).to_pandas()  # no object per row
    bar_start, time_problems = _bar_starts(table.column(layout.time), layout, daily)
    frame = pd.DataFrame({"symbol": symbol, "bar_start": bar_start})
    problems = list(time_problems)
    for column, name in layout.price_columns.items():
        values, not_a_number = _numbers(table.column(name))
        frame[column] = _scaled(values, layout.price_scale) if column != "volume" else values
        problems.append((not_a_number, name, "is not a number"))
    found, bad = {}, np.zeros(len(frame), dtype=bool)
    for mask, column, reason in problems:
        bad |= mask
        rows = np.flatnonzero(mask)
        _, first = np.unique(order[rows], return_index=True)  # each symbol's first such row
        for row in rows[np.sort(first)].tolist():
            if symbol[row] not in found:
                value = str(table.column(column)[row].as_py())
                found[symbol[row]] = f"{symbol[row]}: {file.path.name} {line(row)}: {column} {value!r} {reason}"
    return frame.assign(order=order)[~bad], found


def _scaled(prices: np.ndarray, scale: float) -> np.ndarray:
    """``prices`` x ``scale``; a scale of 1/N is a division by N, which gives the nearest float
    to the decimal price (170920000000 / 1e9 = 170.92; x 1e-9 gives 170.92000000000002)."""
    divisor = 1 / scale
    return prices / round(divisor) if scale < 1 and abs(divisor - round(divisor)) < 1e-6 else prices * scale


def _read_columns(file: TableFile, layout: TableLayout, symbols: Sequence[str]):
    """The layout's columns of the rows of ``symbols`` (all rows of a one-symbol file), the
    position in ``symbols`` of each row's symbol, and a function naming where a row is in the
    file."""
    path = file.path
    is_parquet = path.name.lower().endswith(".parquet")
    try:
        names = pq.read_schema(path).names if is_parquet else _csv_header(path)
    except Exception as exc:  # pyarrow and gzip raise many types; all mean "not readable"
        raise MalformedFile(f"{path.name}: not a readable {_kind(path)} file ({exc})") from None
    missing = [c for c in layout.file_columns if c not in names]
    if missing:
        raise MalformedFile(f"{path.name}: missing column(s) {', '.join(missing)}")
    try:
        table = pq.read_table(path, columns=layout.file_columns) if is_parquet else _read_csv(path, layout)
    except Exception as exc:
        raise MalformedFile(f"{path.name}: not a readable {_kind(path)} file ({exc})") from None
    if layout.symbol:
        positions = _positions(table.column(layout.symbol), pa.array(list(symbols), pa.string()))
        keep = positions >= 0
        rows, order = np.flatnonzero(keep), positions[keep]
        table = table.filter(pa.array(keep))
    else:
        rows = np.arange(table.num_rows)
        order = np.full(table.num_rows, list(symbols).index(file.symbol))
    where = (lambda row: f"row {rows[row] + 1}") if is_parquet else (lambda row: f"line {rows[row] + 2}")
    return table, order, where


def _positions(column: pa.ChunkedArray, wanted: pa.Array) -> np.ndarray:
    """For each row, the position of its symbol in ``wanted``, -1 if it is not there. A
    dictionary-encoded column is looked up once per distinct symbol, not once per row."""
    if not column.num_chunks:
        return np.empty(0, np.int64)
    if pa.types.is_dictionary(column.type):
        column = column.unify_dictionaries()
        lookup = pc.index_in(column.chunk(0).dictionary, value_set=wanted).fill_null(-1).to_numpy()
        parts = [lookup[chunk.indices.to_numpy(zero_copy_only=False)] for chunk in column.chunks]
    else:
        parts = [pc.index_in(chunk, value_set=wanted).fill_null(-1).to_numpy() for chunk in column.chunks]
    return np.concatenate(parts).astype(np.int64)


def _kind(path: Path) -> str:
    name = path.name.lower()
    return "Parquet" if name.endswith(".parquet") else "gzip CSV" if name.endswith(".gz") else "CSV"


def csv_input(path: Path):
    """What pyarrow reads a CSV file from: a ``.gz`` file through ISA-L's gzip (about twice as
    fast as zlib, the decompression being most of the time a day file takes to read)."""
    return igzip.open(path, "rb") if path.name.lower().endswith(".gz") else path


def _csv_header(path: Path) -> list[str]:
    source = csv_input(path)
    with source if hasattr(source, "read") else open(source, "rb") as stream:
        head = stream.read(1 << 16)
    first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    return next(csv.reader([first]), [])


def _read_csv(path: Path, layout: TableLayout) -> pa.Table:
    """The layout's columns, typed (numbers as float64, epoch times as int64) when every value
    converts, else as text, for ``_numbers`` and ``_bar_starts`` to find the rows that do not."""
    typed = {name: pa.float64() for name in layout.price_columns.values()}
    typed[layout.time] = pa.int64() if layout.time_unit else pa.string()
    if layout.symbol:  # a day file repeats each of ~10,000 tickers hundreds of times
        typed[layout.symbol] = pa.dictionary(pa.int32(), pa.string())
    try:
        return _csv(path, layout, typed)
    except pa.ArrowInvalid:  # a value that does not convert: read as text, find it row by row
        return _csv(path, layout, dict.fromkeys(typed, pa.string()))


def _csv(path: Path, layout: TableLayout, types: dict[str, pa.DataType]) -> pa.Table:
    return pa_csv.read_csv(csv_input(path), convert_options=pa_csv.ConvertOptions(
        include_columns=layout.file_columns, column_types=types, strings_can_be_null=False))


def _numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values of a column, and which rows hold no number."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.zeros(len(values), dtype=bool)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)
    values = pd.to_numeric(pd.Series(column.to_numpy(zero_copy_only=False)), errors="coerce")
    return values.to_numpy(np.float64), values.isna().to_numpy()


def _integers(column: pa.ChunkedArray) -> pd.Series:
    """A column of epoch integers as nullable int64: missing where a value is not an integer
    (parsed exactly; a float64 would drop the last digits of a time in nanoseconds)."""
    if pa.types.is_integer(column.type):
        return pd.Series(column.to_numpy(zero_copy_only=False), dtype="Int64")
    text = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object).astype(str).str.strip()
    integral = text.str.fullmatch(r"[+-]?\d{1,19}")
    parsed = pd.to_numeric(text.where(integral), errors="coerce", dtype_backend="numpy_nullable")
    return parsed.astype("Int64")


def _bar_starts(column: pa.ChunkedArray, layout: TableLayout,
                daily: bool) -> tuple[np.ndarray, list[tuple[np.ndarray, str, str]]]:
    """Epoch seconds of the bar starts, and (rows, column, reason) of the stamps that cannot be
    read, need an offset the layout does not give, or are not on a minute (1m data)."""
    nanos, problems = _epoch_nanos(column, layout, daily)
    unreadable = np.zeros(len(nanos), dtype=bool)
    for mask, _, _ in problems:
        unreadable |= mask
    if not daily:
        problems.append((~unreadable & (nanos % 60_000_000_000 != 0), layout.time, "is not on a minute"))
    return nanos // 1_000_000_000, problems


def _epoch_nanos(column: pa.ChunkedArray, layout: TableLayout, daily: bool):
    name = layout.time
    if layout.time_unit:
        integers = _integers(column)
        not_an_integer = integers.isna().to_numpy()
        nanos = integers.fillna(0).to_numpy(np.int64) * (1_000_000_000 // TIME_UNITS[layout.time_unit])
        return nanos, [(not_an_integer, name, "is not an integer")]
    if pa.types.is_timestamp(column.type):
        stamps = column.to_pandas()
        if stamps.dt.tz is None:
            return _localized(stamps, stamps.isna().to_numpy(), layout)
        return _utc_nanos(stamps), []
    return _text_nanos(pd.Series(column.to_numpy(zero_copy_only=False), dtype=object).astype(str).str.strip(),
                       layout, daily)


def _text_nanos(text: pd.Series, layout: TableLayout, daily: bool):
    """Text stamps: the layout's ``time_format``, else ISO 8601 with an offset, naive in the
    layout's zone, or (daily data) a date alone, read as midnight UTC."""
    name = layout.time
    dates = text.str.fullmatch(DATE_ONLY).to_numpy(dtype=bool)
    problems = [] if daily else [(dates, name, DATE_WITHOUT_TIME)]
    if layout.time_format:
        with_offset = np.full(len(text), "%z" in layout.time_format)
        unreadable_reason = f"does not match the time_format {layout.time_format!r}"
        parse = {"format": layout.time_format}
    else:
        with_offset = text.str.contains(UTC_OFFSET).to_numpy(dtype=bool) | dates
        text = text.mask(pd.Series(dates, index=text.index), text + "T00:00:00Z")
        unreadable_reason = "is not an ISO 8601 time"
        parse = {"format": "ISO8601"}
    offset_rows = pd.Series(with_offset, index=text.index)
    aware = pd.to_datetime(text.where(offset_rows), utc=True, errors="coerce", **parse)
    naive = pd.to_datetime(text.where(~offset_rows), errors="coerce", **parse)
    unreadable = np.where(with_offset, aware.isna().to_numpy(), naive.isna().to_numpy())
    problems.append((unreadable, name, unreadable_reason))
    local, more = _localized(naive, with_offset | unreadable, layout)
    return np.where(with_offset, _utc_nanos(aware), local), problems + more


def _utc_nanos(stamps: pd.Series) -> np.ndarray:
    """Epoch ns of tz-aware stamps (0 where missing)."""
    utc = stamps.dt.tz_convert("UTC").fillna(pd.Timestamp(0, tz="UTC"))
    return utc.astype("datetime64[ns, UTC]").astype(np.int64).to_numpy()


def _localized(naive: pd.Series, skip: np.ndarray, layout: TableLayout):
    """Epoch ns of naive stamps in the layout's ``time_zone`` (rows in ``skip`` are not looked at),
    and the rows that have no zone to be read in, or fall in a DST change (not or twice on the
    clock there)."""
    name = layout.time
    if not layout.time_zone:
        return np.zeros(len(naive), dtype=np.int64), [
            (~skip, name, "has no UTC offset and the layout names no time_zone")]
    local = naive.dt.tz_localize(layout.time_zone, ambiguous="NaT", nonexistent="NaT")
    in_change = ~skip & local.isna().to_numpy()
    return _utc_nanos(local), [(in_change, name, f"does not exist or is ambiguous in {layout.time_zone} "
                                                 "(a DST change)")]
