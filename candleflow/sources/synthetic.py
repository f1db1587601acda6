"""The embedded default source: deterministic synthetic candles on the exchange calendar."""

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.intervals import BASE_INTERVAL, DAILY
from candleflow.market.synthetic import synthetic_daily, synthetic_minutes
from candleflow.sources.base import CandleSource, SourceBatch


class SyntheticSource(CandleSource):
    def __init__(self, seed: int = 7, base_interval: str = BASE_INTERVAL,
                 calendar: ExchangeSessions | None = None, as_of: datetime | None = None):
        if base_interval not in (BASE_INTERVAL, DAILY):
            raise ValueError(f"synthetic source base_interval must be 1m or 1d, not {base_interval!r}")
        self.seed = seed
        self.base_interval = base_interval
        self.calendar = calendar or ExchangeSessions()
        self.as_of = as_of

    def fetch(self, symbols: Sequence[str], sessions: pd.DataFrame | None) -> SourceBatch:
        if sessions is None:
            last = self.calendar.last_closed_session(self.as_of or datetime.now(UTC))
            sessions = self.calendar.sessions(last, last)
        generate = synthetic_minutes if self.base_interval == BASE_INTERVAL else synthetic_daily
        return SourceBatch(generate(list(symbols), sessions, self.seed, self.calendar))
