"""Candle sources as one Dagster resource interface with two implementations."""

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.base import CandleSource
from candleflow.sources.folder import CANDLEFLOW_LAYOUT, landing_source
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
    """CSV or Parquet files dropped into a landing folder, in candleflow's layout (a file per
    symbol) or a vendor's (a day file holding every ticker, a Databento export, a mapped export)."""

    landing_dir: str = Field(description="Folder the landing sensor watches.")
    layout: str = Field(default=CANDLEFLOW_LAYOUT, description="candleflow (a file per symbol), "
                        "polygon-day, databento-ohlcv, or the path of a YAML mapping file.")
    base_interval: str = Field(default="1m", description="1m, or 1d for daily-only files.")
    new_tickers: str = Field(default="add", description="What the landing sensor does with symbols "
                             "of landed files not yet in the universe: add (as partitions) or ignore.")
    landed_since_ns: int = Field(default=0, description="Read only files modified at or after this "
                                 "time (ns since the epoch); the landing sensor sets it per run. "
                                 "0 = every landed file.")

    def build(self, calendar: ExchangeSessions) -> CandleSource:
        return landing_source(self.landing_dir, self.layout, self.base_interval, calendar, self.landed_since_ns)
