"""The one interface every candle source implements."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class SourceBatch:
    """Candles as the source delivered them (not yet validated), and per-symbol errors.

    A symbol named in ``errors`` delivered nothing usable (a malformed file, no data); the other
    symbols are unaffected.
    """

    candles: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)
    #: When the delivered data was current (epoch s), if the source knows better than the real
    #: clock (a replayed session); a run treats it as "now" when it marks bars complete.
    as_of: int | None = None
    #: Symbols with nothing new since the source's mark (no file landed for them in that minute):
    #: not an error; they succeed without new rows, and their open bars follow the clock.
    unchanged: list[str] = field(default_factory=list)
    #: Names of the files the candles were read from; a file source's candles then have a column
    #: ``file``, each row's position in it, so that a rejection names the row's file.
    files: list[str] = field(default_factory=list)


class CandleSource(ABC):
    #: "1m" for minute data, "1d" for daily-only data.
    base_interval: str

    @abstractmethod
    def fetch(self, symbols: Sequence[str], sessions: pd.DataFrame | None) -> SourceBatch:
        """Candles of ``symbols`` inside ``sessions`` (a frame from ``ExchangeSessions.sessions``).

        ``sessions=None`` asks for the source's default window: the latest closed session for a
        generator, everything landed for a folder of files.
        """
