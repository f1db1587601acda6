"""What every stage of a run shares: the store, the source, the calendar, the specs, and "now"."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from candleflow.formula.limits import SCAN_TIME_LIMIT_S
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import IndicatorSpec
from candleflow.pipeline.chunks import DEFAULT_CHUNK_BARS
from candleflow.pipeline.recent_bars import RecentBars
from candleflow.pipeline.scan_config import ConfiguredScan
from candleflow.pipeline.window import Window, window_between
from candleflow.sources.base import CandleSource
from candleflow.store import MarketDataRepository


@dataclass
class PipelineContext:
    store: MarketDataRepository
    source: CandleSource
    calendar: ExchangeSessions
    indicators: Sequence[IndicatorSpec]
    scans: Sequence[ConfiguredScan]
    #: Wall-clock time the run treats as "now" (epoch s); None means the real clock.
    as_of: int | None = None
    #: Every symbol of the universe, which scans without their own ``universe`` rank across
    #: (rank, percentile, zscore) whatever the run's symbols; empty: the run's symbols.
    universe: Sequence[str] = ()
    #: Wall-clock seconds one scan may take per block of symbols before it fails for them.
    scan_time_limit_s: float = SCAN_TIME_LIMIT_S
    #: Base bars a step holds at once: a longer window runs in chunks of sessions of that size.
    chunk_bars: int = DEFAULT_CHUNK_BARS
    #: Bars written by the current ``run_stages`` call, read by its later stages.
    recent: RecentBars = field(init=False)
    #: "Now" of the current ``run_stages`` call: ``as_of``, else what the source batch says.
    clock: int | None = field(init=False, default=None)

    def __post_init__(self):
        self.recent = RecentBars(self.store)

    def now(self) -> int:
        return self.clock if self.clock is not None else int(time.time())


def resolve_window(ctx: PipelineContext, start: str, end: str) -> Window | None:
    """The explicit window of a run, or None to let the source choose (see CandleSource.fetch)."""
    if not start and not end:
        return None
    first = datetime.fromisoformat(start or end).date()
    last = datetime.fromisoformat(end or start).date()
    return window_between(ctx.calendar, first, last)


def latest_closed_window(ctx: PipelineContext) -> Window:
    now = datetime.fromtimestamp(ctx.as_of, UTC) if ctx.as_of else datetime.now(UTC)
    last = ctx.calendar.last_closed_session(now)
    return window_between(ctx.calendar, last, last)
