"""Which indicators and scans a run computes, and on which exchange calendar."""

import dagster as dg
from pydantic import Field

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS, IndicatorSpec, load_indicator_specs
from candleflow.pipeline.scan_config import ConfiguredScan, load_scans


class PipelineSettings(dg.ConfigurableResource):
    indicators_file: str = Field(default="", description="YAML indicator spec; empty = packaged default.")
    scans_file: str = Field(default="", description="YAML scans; empty = packaged config/scans.yaml.")
    calendar: str = Field(default="XNYS", description="exchange-calendars code of the exchange.")

    def indicator_specs(self) -> list[IndicatorSpec]:
        return load_indicator_specs(self.indicators_file) if self.indicators_file else list(DEFAULT_INDICATORS)

    def scans(self) -> list[ConfiguredScan]:
        return load_scans(self.scans_file or None)

    def sessions(self) -> ExchangeSessions:
        return ExchangeSessions(self.calendar)
