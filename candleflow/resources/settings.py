"""Which indicators and scans a run computes, and on which exchange calendar."""

from datetime import date

import dagster as dg
from pydantic import Field

from candleflow.formula.limits import SCAN_TIME_LIMIT_S
from candleflow.market.calendar import DEFAULT_START, ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS, IndicatorSpec, load_indicator_specs
from candleflow.pipeline.chunks import DEFAULT_CHUNK_BARS
from candleflow.pipeline.scan_config import ConfiguredScan, load_scans


class PipelineSettings(dg.ConfigurableResource):
    indicators_file: str = Field(default="", description="YAML indicator spec; empty = packaged default.")
    scans_file: str = Field(default="", description="YAML scans; empty = packaged config/scans.yaml.")
    calendar: str = Field(default="XNYS", description="exchange-calendars code of the exchange.")
    calendar_start: str = Field(default=DEFAULT_START.isoformat(), description="First day of the "
                                "calendar (YYYY-MM-DD): no data may be older; a fixed date, so that "
                                "the calendar's range does not move with the clock.")
    extended_hours_bars: bool = Field(default=False, description="Intraday bars include the extended "
                                      "hours, aligned to their start; daily bars stay the regular session.")
    scan_time_limit_s: float = Field(default=SCAN_TIME_LIMIT_S, description="Wall-clock seconds one "
                                     "scan may take on one block of symbols.")

    chunk_bars: int = Field(default=DEFAULT_CHUNK_BARS, description="Base bars a run holds at once (its "
                            "shards running at once share them): a longer window runs in chunks of sessions.")

    def indicator_specs(self) -> list[IndicatorSpec]:
        return load_indicator_specs(self.indicators_file) if self.indicators_file else list(DEFAULT_INDICATORS)

    def scans(self) -> list[ConfiguredScan]:
        return load_scans(self.scans_file or None)

    def sessions(self) -> ExchangeSessions:
        return ExchangeSessions(self.calendar, date.fromisoformat(self.calendar_start), self.extended_hours_bars)
