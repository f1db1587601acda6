"""``MarketDataRepository``: the store as the pipeline stages use it, and nothing more.

``CandleStore`` is the implementation (SQLite or Postgres, ``candleflow.store.dialects``); the
stages (``candleflow.pipeline``) depend on this protocol only, so another storage layout or an
in-memory store for a test needs these six methods and no database.
"""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from candleflow.market.calendar import ExchangeSessions


@runtime_checkable
class MarketDataRepository(Protocol):
    """Candles, indicator values and scan signals keyed as docs/tables.md documents. Each write is one
    transaction and idempotent: writing the same rows twice leaves the same rows."""

    def write_candles(self, frame: pd.DataFrame, interval: str) -> int:
        """Upsert candles (a candle frame, with an optional ``part`` column: pre, regular or
        post; a new row without it is regular) at ``interval``; returns the rows written."""

    def write_indicators(self, frame: pd.DataFrame) -> int:
        """Upsert indicator values (symbol, interval, bar_start, name, value); returns the rows written."""

    def replace_signals(self, frame: pd.DataFrame, scans: Sequence[str], symbols: Sequence[str],
                        since: int) -> int:
        """Replace the signals of ``scans`` x ``symbols`` at bars >= ``since`` with ``frame``."""

    def read_candles(self, symbols: Sequence[str], interval: str, start: int | None = None,
                     end: int | None = None) -> pd.DataFrame:
        """Candles of ``interval`` for ``symbols`` with start <= bar_start < end, as a candle
        frame ordered by symbol and bar_start."""

    def count_candles(self, symbols: Sequence[str], interval: str, start: int | None = None,
                      end: int | None = None) -> dict[str, int]:
        """Stored candles per symbol, as ``read_candles`` would select them (symbols with none left out)."""

    def complete_ended_bars(self, symbols: Sequence[str], now: int,
                            calendar: ExchangeSessions) -> dict[str, int]:
        """Mark complete the open bars of ``symbols`` whose window ended at or before ``now``;
        returns how many per symbol (symbols with none left out)."""
