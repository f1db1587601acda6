"""What a stage reports back: per-symbol outcome, rows and timing."""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from candleflow.isolation import batch_then_one_by_one, error_text
from candleflow.market.checks import CheckOutcome, combined_checks

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    stage: str
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: Symbols that succeeded with a remark (e.g. too little history for a scan: no match).
    notes: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    first_bar: int | None = None
    last_bar: int | None = None
    #: Per interval, the first and last bar_start written: what downstream consumers re-read.
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    checks: list[CheckOutcome] = field(default_factory=list)
    #: Of ``failed``, the symbols the source had no candles for (a chunk of a long window may
    #: have none for a symbol that the window's other chunks have: ``candleflow.pipeline.chunks``).
    missing: set[str] = field(default_factory=set)

    @property
    def rows_written(self) -> int:
        return sum(self.rows.values())

    def record_rows(self, frame: pd.DataFrame, interval: str | None = None) -> None:
        """Count rows per symbol of a written frame and widen the time spans: the stage's and
        that of ``interval`` (None: of each value of the frame's ``interval`` column)."""
        if frame.empty:
            return
        for symbol, count in frame["symbol"].value_counts().items():
            self.rows[symbol] = self.rows.get(symbol, 0) + int(count)
        first, last = int(frame["bar_start"].min()), int(frame["bar_start"].max())
        self.first_bar = first if self.first_bar is None else min(self.first_bar, first)
        self.last_bar = last if self.last_bar is None else max(self.last_bar, last)
        if interval is None:
            spans = frame.groupby(frame["interval"].astype(str))["bar_start"].agg(["min", "max"])
        else:
            spans = pd.DataFrame({"min": [first], "max": [last]}, index=[interval])
        for name, (low, high) in spans.iterrows():
            known = self.changed.get(name, (int(low), int(high)))
            self.changed[name] = (min(known[0], int(low)), max(known[1], int(high)))

    def absorb(self, other: "StageResult") -> None:
        """Add ``other``, the same stage over other symbols or sessions: its rows, notes, seconds,
        spans and checks (one outcome per check: the most symbols either checked, every failure).
        Which symbols succeeded or failed is the caller's to decide."""
        self.seconds += other.seconds
        for symbol, count in other.rows.items():
            self.rows[symbol] = self.rows.get(symbol, 0) + count
        for symbol, note in other.notes.items():
            known = self.notes.get(symbol)
            self.notes[symbol] = note if known in (None, note) else f"{known}; {note}"
        for bound in (other.first_bar, other.last_bar):
            if bound is not None:
                self.first_bar = bound if self.first_bar is None else min(self.first_bar, bound)
                self.last_bar = bound if self.last_bar is None else max(self.last_bar, bound)
        for interval, (low, high) in other.changed.items():
            known = self.changed.get(interval, (low, high))
            self.changed[interval] = (min(known[0], low), max(known[1], high))
        self.checks = combined_checks([*self.checks, *other.checks], max)


def run_isolated(symbols: Sequence[str], work: Callable[[list[str]], pd.DataFrame],
                 result: StageResult) -> pd.DataFrame:
    """``work`` on all symbols at once; if it raises, again one symbol at a time
    (``batch_then_one_by_one``), each failure recorded in ``result.failed``. If every symbol
    fails, the result is ``work([])``: no rows, and the columns later code expects.
    """

    def log_batch_failure(error: Exception) -> None:
        log.warning("%s: batch of %d symbols failed (%s); retrying per symbol",
                    result.stage, len(symbols), error)

    def record_failure(symbol: str, error: Exception) -> None:
        result.failed[symbol] = error_text(error)

    frames = batch_then_one_by_one(list(symbols), work, record_failure, on_batch_failure=log_batch_failure)
    if not frames:
        return work([])
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class Timer:
    """Context manager that adds the elapsed wall time to ``result.seconds``."""

    def __init__(self, result: StageResult):
        self.result = result

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.result.seconds += time.perf_counter() - self.started
        return False
