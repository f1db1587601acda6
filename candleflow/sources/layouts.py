"""Column layouts of the candle files vendors ship, and the YAML mapping that describes any other.

A ``TableLayout`` says which column holds what and how to read the bar start; the table reader
(``candleflow.sources.tables``) needs nothing else. The vendors' layouts are declared once here
(``LAYOUTS``); a mapping file (``load_layout``) names a base layout and overrides its fields, or
describes an export from scratch (docs/candle-sources.md gives yfinance, Alpaca and IBKR examples).
"""

import dataclasses
import datetime
import math
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from candleflow.config_yaml import load_config_yaml

#: Units of epoch-integer time columns, as parts of a second.
TIME_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: A date in a file name (``2024-03-08.csv.gz``, ``xnas-itch-20240308.ohlcv-1m.csv``).
DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d\d)-?(\d\d)(?!\d)")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class TableLayout:
    """How to read candles out of one vendor's files."""

    name: str
    #: Column of the bar start.
    time: str
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str = "volume"
    #: Column of the symbol; empty: the symbol is the start of the file name (``AAPL.csv``).
    symbol: str = "symbol"
    #: Time column as epoch integers in this unit (``s``, ``ms``, ``us``, ``ns``); empty: text
    #: (ISO 8601, or ``time_format``) or a Parquet time stamp.
    time_unit: str = ""
    #: ``strptime`` format of text stamps; empty: ISO 8601.
    time_format: str = ""
    #: Time zone of stamps that carry no offset; empty: such stamps are refused.
    time_zone: str = ""
    #: Stored price = file price x price_scale (1e-9 for fixed-point integers in nano-units).
    price_scale: float = 1.0
    #: One file per trading day, named by its date: a run reads only its window's days.
    by_day: bool = False

    @property
    def price_columns(self) -> dict[str, str]:
        """Candle column -> file column of the prices and the volume."""
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close,
                "volume": self.volume}

    @property
    def file_columns(self) -> list[str]:
        """The file's columns this layout reads."""
        return [c for c in (self.symbol, self.time, *self.price_columns.values()) if c]


#: Polygon (Massive) flat files, minute and day aggregates: one gzip CSV per day, every ticker.
POLYGON_DAY = TableLayout("polygon-day", symbol="ticker", time="window_start", time_unit="ns", by_day=True)
#: Databento OHLCV-1m (or -1d) as CSV: bar start ``ts_event`` in Unix ns; decimal prices (a mapping
#: with ``layout: databento-ohlcv`` and ``price_scale: 1e-9`` reads fixed-point prices).
DATABENTO_OHLCV = TableLayout("databento-ohlcv", time="ts_event", time_unit="ns")

LAYOUTS = {layout.name: layout for layout in (POLYGON_DAY, DATABENTO_OHLCV)}
_FIELDS = {f.name: f for f in dataclasses.fields(TableLayout) if f.name != "name"}


class LayoutError(ValueError):
    """A mapping file candleflow cannot use; the message names the file and the key."""


def layout_named(name: str) -> TableLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(f"unknown file layout {name!r} (known: {', '.join(LAYOUTS)})") from None


def load_layout(path: str | Path) -> TableLayout:
    """The layout a YAML mapping file describes: ``layout`` (optional) names the base layout,
    every other key overrides a field of it; without a base, ``time`` is required."""
    path = Path(path)
    where = path.name
    try:
        document = load_config_yaml(path.read_text(encoding="utf-8"), where)
    except OSError as exc:
        raise LayoutError(f"{where}: cannot read the mapping file ({exc.strerror})") from None
    except ValueError as exc:  # YAML anchors, or text that is not YAML
        raise LayoutError(str(exc)) from None
    except Exception as exc:  # yaml's parser errors
        raise LayoutError(f"{where}: not a YAML mapping ({exc})") from None
    if not isinstance(document, dict):
        raise LayoutError(f"{where}: expected a mapping of layout fields, got {type(document).__name__}")
    base = document.pop("layout", None)
    if base is not None and not isinstance(base, str):
        raise LayoutError(f"{where}: layout must be the name of a layout")
    if base is None and "time" not in document:
        raise LayoutError(f"{where}: time (the column of the bar start) is required without a base layout")
    fields = {key: _field_value(where, key, value) for key, value in document.items()}
    start = layout_named(base) if base else TableLayout(where, time=fields["time"])
    return _checked(where, dataclasses.replace(start, name=where, **fields))


def _field_value(where: str, key, value):
    if key not in _FIELDS:
        raise LayoutError(f"{where}: unknown key {key!r} (known: layout, {', '.join(_FIELDS)})")
    kind = _FIELDS[key].type
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0):
            raise LayoutError(f"{where}: {key} must be a positive number")
        return float(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise LayoutError(f"{where}: {key} must be true or false")
        return value
    if not isinstance(value, str):
        raise LayoutError(f"{where}: {key} must be text (a column name or a format)")
    return value


def _checked(where: str, layout: TableLayout) -> TableLayout:
    if layout.time_unit and layout.time_unit not in TIME_UNITS:
        raise LayoutError(f"{where}: time_unit must be one of {', '.join(TIME_UNITS)}, not {layout.time_unit!r}")
    if layout.time_unit and layout.time_format:
        raise LayoutError(f"{where}: time_unit and time_format exclude each other")
    if layout.time_zone:
        try:
            zoneinfo.ZoneInfo(layout.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise LayoutError(f"{where}: unknown time_zone {layout.time_zone!r} (an IANA name such as "
                              "America/New_York)") from None
    columns = layout.file_columns
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise LayoutError(f"{where}: column {repeated[0]!r} is mapped twice")
    return layout


def day_in_name(name: str) -> datetime.date | None:
    """The date a file's name holds (``2024-03-08`` or ``20240308``), or None."""
    match = DATE_IN_NAME.search(name)
    if not match:
        return None
    try:
        return datetime.date(*map(int, match.groups()))
    except ValueError:
        return None
