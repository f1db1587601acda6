"""A long window taken through the stages in chunks of sessions, so that a step's memory depends
on its symbols and the chunk size, not on the window's length.

Each chunk runs every selected stage before the next chunk starts. What a chunk's indicators and
scans need from before it (their warm-up) is the store's content by then: the earlier chunks wrote
it, and ``RecentBars`` hands on the bars the previous chunk kept in memory. The chunk's results
are merged into one ``StageResult`` per stage, so a chunked run reports (materializations, tracking
rows, checks) what the same run over the whole window at once would.

A ``ChunkLedger`` records each finished chunk, so that a run attempt that was killed is continued
from its first unfinished chunk by the next attempt of its run chain.
"""

import ctypes
import ctypes.util
import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.checks import CheckOutcome
from candleflow.market.intervals import BASE_INTERVAL
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.window import Window

#: 1m bars a run holds at once by default (CANDLEFLOW_CHUNK_BARS; a universe run's shards that run at
#: once share them): about one session of 2,500 symbols.
DEFAULT_CHUNK_BARS = 1_000_000
_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME) if _LIBC_NAME else None


def sessions_per_chunk(calendar: ExchangeSessions, base_interval: str, symbols: int, chunk_bars: int) -> int:
    """How many sessions of ``symbols`` hold at most ``chunk_bars`` base bars (at least one)."""
    per_session = calendar.bar_session_seconds // 60 if base_interval == BASE_INTERVAL else 1
    return max(1, chunk_bars // max(1, symbols * per_session))


def release_freed_memory() -> None:
    """Hand the memory a finished chunk freed back to the system. glibc keeps freed heap pages
    of a process (pandas frees many mid-sized arrays) and reuses them unevenly, so without this
    the resident size creeps up chunk after chunk; ``malloc_trim`` returns them. A no-op where
    the C library has no ``malloc_trim``."""
    gc.collect()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def session_chunks(window: Window, size: int) -> list[Window]:
    """``window`` cut into consecutive windows of ``size`` sessions (the last may be shorter)."""
    sessions = window.sessions
    return [Window(sessions.iloc[first:first + size].reset_index(drop=True))
            for first in range(0, len(sessions), size)]


@dataclass(frozen=True)
class ChunkProgress:
    """Where a chunked run stands after a chunk: what the run's log and tracking rows show."""

    chunk: Window
    index: int
    chunks: int
    sessions_done: int
    sessions_total: int
    rows_written: int
    seconds: float
    #: Sessions of the chunks an earlier attempt finished, which this attempt skipped.
    resumed_sessions: int = 0

    @property
    def seconds_left(self) -> float:
        """The time the remaining sessions take at this attempt's rate so far."""
        ran = self.sessions_done - self.resumed_sessions
        return self.seconds / ran * (self.sessions_total - self.sessions_done) if ran else math.nan

    def describe(self) -> str:
        left = "" if math.isnan(self.seconds_left) else f", about {self.seconds_left:.0f} s left"
        return (f"chunk {self.index + 1}/{self.chunks} ({self.chunk.describe()}) done: "
                f"{self.sessions_done} of {self.sessions_total} sessions, {self.rows_written} rows "
                f"in {self.seconds:.1f} s{left}")


#: Per stage, the symbols that failed in a chunk and why (what a ``ChunkLedger`` keeps of it).
ChunkFailures = Mapping[str, Mapping[str, str]]


class ChunkLedger(Protocol):
    """Which chunks of a step's window its run chain has finished (``pipeline.tracked.TrackedChunks``)."""

    def finished(self) -> Mapping[tuple[date, date], ChunkFailures]:
        """(first, last session) of each finished chunk -> its failures."""

    def record(self, chunk: Window, failures: ChunkFailures, rows_written: int, seconds: float) -> None:
        """``chunk`` is finished: its bars, values and signals are stored."""


@dataclass
class ChunkedResults:
    """The per-stage results of a window's chunks, and the symbols still in the run."""

    symbols: Sequence[str]
    window: Window
    per_chunk: list[list[StageResult]] = field(default_factory=list)
    #: Symbols that failed in a chunk (other than for having no candles in it): out of later chunks.
    dropped: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> list[str]:
        return [s for s in self.symbols if s not in self.dropped]

    def add(self, results: list[StageResult]) -> dict[str, dict[str, str]]:
        """A chunk's results; returns its failures, per stage, that drop symbols from the run."""
        self.per_chunk.append(results)
        failures = {result.stage: {s: reason for s, reason in result.failed.items() if s not in result.missing}
                    for result in results}
        for failed in failures.values():
            self.dropped.update(failed)
        return failures

    def add_finished(self, stages: Sequence[str], failures: ChunkFailures) -> None:
        """A chunk an earlier attempt finished (its rows are stored; none are counted here)."""
        results, remaining = [], self.remaining()
        for stage in stages:
            failed = dict(failures.get(stage, {}))
            results.append(StageResult(stage, succeeded=[s for s in remaining if s not in failed], failed=failed))
            remaining = results[-1].succeeded
        self.add(results)

    def merged(self, stages: Sequence[str]) -> list[StageResult]:
        """One result per stage in ``stages`` that ran, as one run over the whole window gives."""
        by_stage: dict[str, list[StageResult]] = {}
        for results in self.per_chunk:
            for result in results:
                by_stage.setdefault(result.stage, []).append(result)
        merged, failed_before = [], set()
        for stage in (s for s in stages if s in by_stage):
            result = merge_stage_results(stage, by_stage[stage], self.symbols, self.window)
            # as in one run over the window, a symbol an earlier stage failed is not in this one
            result.succeeded = [s for s in result.succeeded if s not in failed_before]
            result.failed = {s: r for s, r in result.failed.items() if s not in failed_before}
            failed_before |= set(result.failed)
            merged.append(result)
        return merged


def merge_stage_results(stage: str, parts: Sequence[StageResult], symbols: Sequence[str],
                        window: Window) -> StageResult:
    """The chunks' results of one stage as one: a symbol succeeded if it succeeded in a chunk and
    failed in none; one the source had no candles for in any chunk fails for the whole window."""
    merged = StageResult(stage)
    succeeded = {s for part in parts for s in part.succeeded}
    merged.missing = {s for part in parts for s in part.missing} - succeeded
    for part in parts:
        merged.notes.update(part.notes)  # a chunk's note replaces the earlier chunk's
        merged.absorb(StageResult(stage, rows=part.rows, first_bar=part.first_bar,
                                  last_bar=part.last_bar, changed=part.changed, seconds=part.seconds,
                                  checks=[CheckOutcome(c.name, c.symbols_checked,
                                                       _failures_of(c.failures, part.missing, merged.missing, window))
                                          for c in part.checks]))
        merged.failed.update(_failures_of(part.failed, part.missing, merged.missing, window))
    merged.succeeded = [s for s in symbols if s in succeeded and s not in merged.failed]
    return merged


def no_candles_message(symbol: str, window: Window | None) -> str:
    span = "the default window" if window is None else window.describe()
    return f"{symbol}: no candles from the source for {span}"


def _failures_of(failed: Mapping[str, str], missing_in_part: set[str], missing: set[str],
                 window: Window) -> dict[str, str]:
    """A chunk's failures as the whole window's: a symbol without candles in this chunk fails
    only if it has none in any, and then for the window."""
    return {symbol: no_candles_message(symbol, window) if symbol in missing_in_part else reason
            for symbol, reason in failed.items() if symbol not in missing_in_part or symbol in missing}
