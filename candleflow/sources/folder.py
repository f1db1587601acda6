"""A landing folder in any layout: which source reads it, which files landed, which symbols a
landed file holds. The one place that maps a layout setting to code.

A layout is ``candleflow`` (one file per symbol, ``candleflow.sources.landed``), the name of a
vendor's layout (``candleflow.sources.layouts.LAYOUTS``), or the path of a YAML mapping file.
"""

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.base import CandleSource
from candleflow.sources.files import FileSource
from candleflow.sources.landed import LandedFile, MalformedFile, landed_files
from candleflow.sources.layouts import LAYOUTS, TableLayout, layout_named, load_layout
from candleflow.sources.tables import TableFile, TableSource, csv_input, table_files

#: candleflow's own layout: ``SYMBOL.csv`` / ``SYMBOL_part.parquet`` with symbol, ts, OHLCV.
CANDLEFLOW_LAYOUT = "candleflow"
LAYOUT_NAMES = (CANDLEFLOW_LAYOUT, *LAYOUTS)
MAPPING_SUFFIXES = (".yaml", ".yml")


def table_layout(layout: str) -> TableLayout | None:
    """The table layout a setting names; None for candleflow's own. Raises LayoutError."""
    if layout == CANDLEFLOW_LAYOUT:
        return None
    return load_layout(layout) if layout.endswith(MAPPING_SUFFIXES) else layout_named(layout)


def landing_source(landing_dir: str | Path, layout: str, base_interval: str,
                   calendar: ExchangeSessions, landed_since_ns: int = 0) -> CandleSource:
    table = table_layout(layout)
    if table is None:
        return FileSource(landing_dir, base_interval, calendar, landed_since_ns)
    return TableSource(landing_dir, table, base_interval, calendar, landed_since_ns)


def landed(landing_dir: str | Path, layout: str,
           modified_since_ns: int = 0) -> tuple[list[LandedFile | TableFile], list[str]]:
    """The candle files modified at or after ``modified_since_ns``, and why each refused one is
    not read."""
    table = table_layout(layout)
    if table is None:
        files, refused = landed_files(landing_dir, modified_since_ns)
        return files, [refusal.message for refusal in refused]
    files = table_files(landing_dir, table, modified_since_ns)
    return [f for f in files if not f.refusal], [f.refusal for f in files if f.refusal]


def symbols_held(files: Sequence[LandedFile | TableFile], layout: str) -> tuple[set[str], list[str]]:
    """The symbols with rows in ``files`` (a symbol column is read alone), and the files that
    cannot be read, with why."""
    table = table_layout(layout)
    symbols: set[str] = set()
    problems = []
    for file in files:
        if table is None or not table.symbol:
            symbols.add(file.symbol)
            continue
        try:
            symbols |= _symbol_column(file.path, table.symbol)
        except MalformedFile as exc:
            problems.append(str(exc))
    return symbols, problems


def _symbol_column(path: Path, column: str) -> set[str]:
    try:
        if path.name.lower().endswith(".parquet"):
            values = pq.read_table(path, columns=[column]).column(column)
        else:
            values = pa_csv.read_csv(csv_input(path), convert_options=pa_csv.ConvertOptions(
                include_columns=[column], column_types={column: pa.string()})).column(column)
    except Exception as exc:  # pyarrow raises many types; all mean "not readable"
        raise MalformedFile(f"{path.name}: cannot read its column {column} ({exc})") from None
    return set(pc.unique(values).drop_null().to_pylist())
