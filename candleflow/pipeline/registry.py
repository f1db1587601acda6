"""The pipeline's stages, each declared once: its name (also its asset key), its tracking domain, its
function, what it reads, its checks, and how the UI shows it.

Everything that names a stage takes it from here: the stage order (``run_stages``), the tracking
rows (``RunTracker``), the asset and check specs, the sharded job (which stages run per shard), the
readiness sensor and the charts. Adding a stage is one entry in ``PIPELINE``.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from candleflow.pipeline.context import PipelineContext
from candleflow.pipeline.result import StageResult, Timer
from candleflow.pipeline.stage_functions import (
    compute_all_indicators,
    derive_all_bars,
    evaluate_signals,
    ingest_candles,
)
from candleflow.pipeline.window import Window

#: ``function(ctx, result, symbols, window, since)`` fills ``result`` (see ``stage_functions``).
StageFunction = Callable[[PipelineContext, StageResult, Sequence[str], Window | None,
                          Mapping[str, int] | None], None]


@dataclass(frozen=True)
class StageCheck:
    """A check a stage reports on every run (a ``CheckOutcome`` of this name)."""

    name: str
    description: str


@dataclass(frozen=True)
class Stage:
    name: str
    #: The task tracking table of the stage's (step, symbol) rows.
    tracking_domain: str
    function: StageFunction
    description: str
    #: The stages whose stored output this one reads.
    reads: tuple[str, ...] = ()
    checks: tuple[StageCheck, ...] = ()
    #: True when the stage looks across symbols (ranks), so it runs once over all of a run's
    #: symbols; False when each symbol is computed on its own (the sharded job runs it per shard).
    cross_sectional: bool = False
    #: How the UI shows the asset: its group in the asset graph, and its kinds.
    group: str = ""
    kinds: frozenset[str] = frozenset()

    @property
    def asset_key(self) -> str:
        """The stage's asset: materializations, partitions and checks are keyed by the stage name."""
        return self.name

    def run(self, ctx: PipelineContext, symbols: Sequence[str], window: Window | None,
            since: Mapping[str, int] | None) -> StageResult:
        """The stage over ``symbols``, timed; a symbol succeeded when it did not fail."""
        result = StageResult(self.name)
        with Timer(result):
            self.function(ctx, result, symbols, window, since)
            result.succeeded = [s for s in symbols if s not in result.failed]
        return result


RAW_CANDLES = Stage(
    "raw_candles", tracking_domain="candle_ingest", function=ingest_candles,
    group="ingest", kinds=frozenset({"pandas", "sql"}),
    description="1-minute (or daily-only) OHLCV candles from the candle source, validated by the "
    "bad-row rules and upserted into the `candles` table. A rejected symbol gets no materialization "
    "and fails the `valid_candles` check.",
    checks=(StageCheck("valid_candles", "No symbol rejected by the bad-row rules or the source."),),
)
DERIVED_BARS = Stage(
    "derived_bars", tracking_domain="derived_bars", function=derive_all_bars, reads=("raw_candles",),
    group="bars", kinds=frozenset({"numpy", "sql"}),
    description="5m, 15m, 30m, 1h bars aligned to the session open and daily bars per session, each "
    "with its 1m-bar count and completeness, in the `candles` table.",
    checks=(StageCheck("ohlc_consistent", "low <= open, close <= high; positive prices; volume >= 0."),
            StageCheck("aligned_bars", "Bars start on the session grid, no duplicates."),
            StageCheck("no_unexpected_gaps", "Derived bars exist exactly where 1m bars exist.")),
)
INDICATORS = Stage(
    "indicators", tracking_domain="indicators", function=compute_all_indicators,
    reads=("derived_bars",), group="analytics", kinds=frozenset({"talib", "sql"}),
    description="SMA, EMA, RSI, MACD, Bollinger bands, ATR and session VWAP per the indicator spec, "
    "in TA-Lib's conventions, in the `indicator_values` table. Materializations carry a `chart` "
    "(daily closes, moving averages, signals) for every symbol of a run of up to 5 symbols, else "
    "for up to 5 symbols with a signal.",
)
SCAN_SIGNALS = Stage(
    "scan_signals", tracking_domain="scans", function=evaluate_signals,
    reads=("derived_bars", "indicators"), cross_sectional=True, group="analytics",
    kinds=frozenset({"numpy", "sql"}),
    description="Matches of the configured scan formulas for the run's symbols, in the `signals` "
    "table with the values of each formula's terms; rank, percentile and zscore are taken over the "
    "scan's whole universe.",
    checks=(StageCheck("symbols_evaluated", "Every symbol evaluated by every scan without error."),),
)

#: The stages in pipeline order: each runs on the symbols the one before left.
PIPELINE: tuple[Stage, ...] = (RAW_CANDLES, DERIVED_BARS, INDICATORS, SCAN_SIGNALS)
STAGES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)
#: The stages a shard of symbols runs on its own (the sharded job runs the others once, after).
PER_SYMBOL_STAGES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE if not stage.cross_sectional)
_BY_NAME = {stage.name: stage for stage in PIPELINE}


def stage_named(name: str) -> Stage:
    return _BY_NAME[name]
