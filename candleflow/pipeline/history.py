"""Preloading daily history (for the demo and the benchmark; not part of a timed run)."""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import DAILY
from candleflow.market.synthetic import synthetic_daily
from candleflow.store import MarketDataRepository

CHUNK_SYMBOLS = 250


def preload_daily_history(store: MarketDataRepository, calendar: ExchangeSessions, symbols: Sequence[str],
                          sessions: int, seed: int, through: date | None = None,
                          ) -> tuple[int, date, date]:
    """Write ``sessions`` synthetic daily bars per symbol ending at ``through``.

    The default ``through`` is the session before the latest closed one, so that a run over the
    latest closed session finds its history in place. Written in chunks of symbols to bound memory.
    """
    if through is None:
        latest = calendar.last_closed_session(datetime.now(UTC))
        through = calendar.sessions_ending(latest, 2)["session"].iloc[0]
    window = calendar.sessions_ending(through, sessions)
    rows = 0
    for i in range(0, len(symbols), CHUNK_SYMBOLS):
        daily = synthetic_daily(list(symbols[i:i + CHUNK_SYMBOLS]), window, seed, calendar)
        rows += store.write_candles(daily, DAILY)
    return rows, window["session"].iloc[0], window["session"].iloc[-1]
