"""Candle sources as one Dagster resource interface with two implementations."""

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.base import CandleSource
from candleflow.sources.files import FileSource
from candleflow.sources.synthetic import SyntheticSource


class CandleSourceResource(dg.ConfigurableResource, ABC):
    """Where raw candles come from. Assets and sensors depend on this interface only."""

    @abstractmethod
    def build(self, calendar: ExchangeSessions) -> CandleSource: ...


class SyntheticCandles(CandleSourceResource):
    """The embedded default: deterministic synthetic candles on the exchange calendar."""

    seed: int = Field(default=7, description="Same seed, same candles.")
    base_interval: str = Field(default="1m", description="1m, or 1d for daily bars only.")

    def build(self, calendar: ExchangeSessions) -> CandleSource:
        return SyntheticSource(self.seed, self.base_interval, calendar)


class LandingFolderCandles(CandleSourceResource):
    """CSV or Parquet files dropped into a landing folder (file names start with the symbol)."""

    landing_dir: str = Field(description="Folder the landing sensor watches.")
    base_interval: str = Field(default="1m", description="1m, or 1d for daily-only files.")
    landed_since_ns: int = Field(default=0, description="Read only files modified at or after this "
                                 "time (ns since the epoch); the landing sensor sets it per run. "
                                 "0 = every landed file.")

    def build(self, calendar: ExchangeSessions) -> CandleSource:
        return FileSource(self.landing_dir, self.base_interval, calendar, self.landed_since_ns)
