"""Launch a run for the symbols whose candle files arrived in the landing folder: files of one
symbol each, or day files holding every ticker (whose symbol column is read to find them).

One run per evaluation, over the range of partitions from the first to the last arrived symbol in
the universe's order, not one per symbol: a minute of files for 2,500 symbols is one run. The run
reads only the files modified since the earliest arrival (``LandingFolderCandles.landed_since_ns``);
symbols inside the range without a new file (no trade in that minute) have nothing new and succeed
without new rows. Splitting the range at them instead would cost a run each (a minute of 2,500
synthetic symbols has 10-20 such gaps), and a run costs more than its symbols' stages.

The cursor is a high-water mark of modification times (and the names at that mark, since many
files can share one timestamp), so it stays small however many files a day lands. A file that
lands with a modification time older than the mark (copied with ``cp -p``) is not seen.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags, symbols_partitions
from candleflow.defs.market_data.jobs import market_data_job
from candleflow.resources import CandleSourceResource, LandingFolderCandles
from candleflow.market.symbols import SYMBOL_PATTERN
from candleflow.sources.folder import landed, symbols_held
from candleflow.sources.landed import LandedFile
from candleflow.sources.tables import TableFile


@dataclass(frozen=True)
class LandingMark:
    """Files up to ``mtime_ns`` have been seen; of those at exactly ``mtime_ns``, ``names``."""

    mtime_ns: int = -1
    names: frozenset[str] = frozenset()

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "LandingMark":
        if not cursor:
            return cls()
        saved = json.loads(cursor)
        return cls(saved["mtime_ns"], frozenset(saved["names"]))

    def to_cursor(self) -> str:
        return json.dumps({"mtime_ns": self.mtime_ns, "names": sorted(self.names)})

    def is_new(self, file: LandedFile | TableFile) -> bool:
        return file.mtime_ns > self.mtime_ns or (
            file.mtime_ns == self.mtime_ns and file.path.name not in self.names)

    def advanced(self, files: Sequence[LandedFile | TableFile]) -> "LandingMark":
        if not files:
            return self
        top = max(self.mtime_ns, max(f.mtime_ns for f in files))
        at_top = {f.path.name for f in files if f.mtime_ns == top}
        return LandingMark(top, frozenset(at_top | (self.names if top == self.mtime_ns else set())))


def covering_range(universe: Sequence[str], symbols: set[str]) -> list[str]:
    """The members of ``universe`` from the first to the last of ``symbols``, in its order."""
    positions = [position for position, symbol in enumerate(universe) if symbol in symbols]
    return list(universe[positions[0]:positions[-1] + 1]) if positions else []


def minute_run_config(candle_source: LandingFolderCandles, landed_since_ns: int) -> dict:
    """Run config that makes a ``market_data`` run read only the files landed since then."""
    config = candle_source.model_dump(include={"landing_dir", "layout", "base_interval", "new_tickers"})
    return {"resources": {"candle_source": {"config": {**config, "landed_since_ns": int(landed_since_ns)}}}}


def universe_symbols(held: set[str], known: Sequence[str], new_tickers: str,
                     log) -> tuple[list[str], list[str]]:
    """The run's symbols (the universe's range covering the symbols ``held`` in arrived files)
    and the symbols to add as partitions: those not in the universe with ``new_tickers`` =
    ``add``, none with ``ignore``. Malformed ones are never added. What is done is logged."""
    malformed = sorted(s for s in held if not SYMBOL_PATTERN.fullmatch(s))
    if malformed:
        log.warning(f"ignored {len(malformed)} malformed symbol(s) of the landed files: {_some(malformed)}")
    outside = sorted(held - set(known) - set(malformed))
    if outside and new_tickers == "ignore":
        log.info(f"ignored {len(outside)} symbol(s) not in the universe (CANDLEFLOW_NEW_TICKERS=ignore): "
                 f"{_some(outside)}")
        outside = []
    elif outside:
        log.info(f"adding {len(outside)} symbol(s) to the universe (CANDLEFLOW_NEW_TICKERS=add): {_some(outside)}")
    return covering_range(list(known) + outside, held), outside


def _some(symbols: Sequence[str], shown: int = 10) -> str:
    more = f" and {len(symbols) - shown} more" if len(symbols) > shown else ""
    return ", ".join(symbols[:shown]) + more


@dg.sensor(
    job=market_data_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the landing folder of the files source. New or changed files (a file per "
    "symbol, or a day file holding every ticker) launch one run over the range of their symbols in "
    "the universe, reading only those files; symbols not yet in the universe are added as partitions "
    "or ignored (CANDLEFLOW_NEW_TICKERS). The cursor is a high-water mark of the files' modification "
    "times.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext, candle_source: CandleSourceResource):
    if not isinstance(candle_source, LandingFolderCandles):
        return dg.SkipReason("the candle source is not a landing folder (CANDLEFLOW_SOURCE=files)")
    mark = LandingMark.from_cursor(context.cursor)
    files, refusals = landed(candle_source.landing_dir, candle_source.layout, modified_since_ns=mark.mtime_ns)
    arrived = [f for f in files if mark.is_new(f)]
    held, unreadable = symbols_held(arrived, candle_source.layout)
    for refusal in refusals + unreadable:
        context.log.warning(f"ignored landed file {refusal}")
    cursor = mark.advanced(files).to_cursor()
    if not arrived:
        return dg.SensorResult(skip_reason="no new or changed files", cursor=cursor)
    known = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
    symbols, new_symbols = universe_symbols(held, known, candle_source.new_tickers, context.log)
    if not symbols:
        return dg.SensorResult(skip_reason=f"the {len(arrived)} new file(s) hold no symbol of the universe",
                               cursor=cursor)
    landed_since_ns = min(f.mtime_ns for f in arrived)
    request = dg.RunRequest(
        run_key=f"{symbols[0]}...{symbols[-1]}@{landed_since_ns}",
        tags=partition_range_tags(symbols),
        run_config=minute_run_config(candle_source, landed_since_ns))
    added = [symbols_partitions.build_add_request(new_symbols)] if new_symbols else []
    return dg.SensorResult(run_requests=[request], dynamic_partitions_requests=added, cursor=cursor)
