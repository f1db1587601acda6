"""A universe run cut into shards of symbols that distributed workers take independently.

The per-symbol stages (raw candles, derived bars, indicators) run shard by shard; the scans are
cross-sectional (ranks across the run's symbols), so they run once over what every shard left.
"""

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from candleflow.market.checks import CheckOutcome, combined_checks
from candleflow.pipeline.result import StageResult

#: A stage's check outcomes, each with the name of its stage.
StageChecks = tuple[tuple[str, CheckOutcome], ...]


@dataclass(frozen=True)
class Shard:
    """``symbols`` of one run, the run's window as given (empty: the source's default), and the
    base bars the shard may hold at once (0: the settings' CANDLEFLOW_CHUNK_BARS)."""

    key: str
    symbols: tuple[str, ...]
    start: str = ""
    end: str = ""
    chunk_bars: int = 0


@dataclass(frozen=True)
class ShardOutcome:
    """What a shard left for the scans: the symbols that passed every per-symbol stage, the
    span of the bars it ingested (None when it ingested nothing), and why the others failed."""

    shard: Shard
    succeeded: tuple[str, ...]
    first_bar: int | None
    last_bar: int | None
    failed: Mapping[str, str] = field(default_factory=dict)
    checks: StageChecks = ()
    #: The shard's part of the scans stage (the scans that do not rank), or None.
    scans: StageResult | None = None


@dataclass(frozen=True)
class MergedOutcome:
    symbols: tuple[str, ...]
    succeeded: tuple[str, ...]
    first_bar: int | None
    last_bar: int | None
    start: str
    end: str
    failed: Mapping[str, str] = field(default_factory=dict)
    #: Each check over every shard's symbols: the symbols checked summed, the failures together.
    checks: StageChecks = ()
    #: The shards' parts of the scans stage as one (None: no shard evaluated scans).
    scans: StageResult | None = None


def split_into_shards(symbols: Sequence[str], size: int, start: str = "", end: str = "",
                      chunk_bars: int = 0) -> list[Shard]:
    """Consecutive shards of at most ``size`` symbols, in the given order, duplicates dropped.

    Keys are ``shard_0000``, ``shard_0001``, ...: valid Dagster mapping keys (a symbol such as
    ``BRK.B`` is not), zero-padded so that they sort like the shards.
    """
    if size < 1:
        raise ValueError(f"shard size must be at least 1, got {size}")
    unique = list(dict.fromkeys(symbols))
    if not unique:
        raise ValueError("no symbols to shard: the universe is empty")
    return [Shard(f"shard_{index:04d}", tuple(unique[first:first + size]), start, end, chunk_bars)
            for index, first in enumerate(range(0, len(unique), size))]


def merge_outcomes(outcomes: Sequence[ShardOutcome]) -> MergedOutcome:
    """All symbols and the surviving ones, in shard order, the span of all ingested bars, and the
    failures of every shard."""
    if not outcomes:
        raise ValueError("no shard outcomes to merge")
    ordered = sorted(outcomes, key=lambda outcome: outcome.shard.key)
    firsts = [o.first_bar for o in ordered if o.first_bar is not None]
    lasts = [o.last_bar for o in ordered if o.last_bar is not None]
    return MergedOutcome(
        symbols=tuple(symbol for outcome in ordered for symbol in outcome.shard.symbols),
        succeeded=tuple(symbol for outcome in ordered for symbol in outcome.succeeded),
        first_bar=min(firsts) if firsts else None,
        last_bar=max(lasts) if lasts else None,
        start=ordered[0].shard.start,
        end=ordered[0].shard.end,
        failed={symbol: reason for outcome in ordered for symbol, reason in outcome.failed.items()},
        checks=_summed_checks([check for outcome in ordered for check in outcome.checks]),
        scans=_summed_scans([outcome.scans for outcome in ordered if outcome.scans is not None]),
    )


def _summed_scans(parts: Sequence[StageResult]) -> StageResult | None:
    if not parts:
        return None
    summed = StageResult(parts[0].stage)
    for part in parts:
        summed.absorb(part)
        summed.succeeded += part.succeeded
        summed.failed.update(part.failed)
    # each shard checked its own symbols
    summed.checks = combined_checks([check for part in parts for check in part.checks], operator.add)
    return summed


def checks_by_stage(results: Sequence[StageResult]) -> StageChecks:
    return tuple((result.stage, check) for result in results for check in result.checks)


def _summed_checks(checks: Sequence[tuple[str, CheckOutcome]]) -> StageChecks:
    """Each stage's checks over every shard (each shard checked its own symbols)."""
    by_stage: dict[str, list[CheckOutcome]] = {}
    for stage, outcome in checks:
        by_stage.setdefault(stage, []).append(outcome)
    return tuple((stage, outcome) for stage, outcomes in by_stage.items()
                 for outcome in combined_checks(outcomes, operator.add))
