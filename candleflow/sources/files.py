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

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.sources.base import CandleSource, SourceBatch
from candleflow.sources.batches import finished_batch
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
        rows = self._read(files, errors)
        return finished_batch(rows, errors, unchanged, sessions, self.base_interval, self.calendar,
                              [landed.path.name for landed in files])

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
        """Symbol, bar_start, OHLCV and ``file`` (position in ``files``) rows of ``files``, in
        their order; the first problem of a symbol's files goes to ``errors``."""
        batch, left = read_csv_batch(files)
        position = {landed.path: index for index, landed in enumerate(files)}
        frames = [batch]
        for landed in left:
            try:
                frames.append(read_landed_file(landed, daily=self.base_interval == DAILY).assign(file=position[landed.path]))
            except MalformedFile as exc:
                errors.setdefault(landed.symbol, str(exc))
        rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else batch
        return rows.sort_values("file", kind="stable")
