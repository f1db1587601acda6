"""Bar sanity checks over freshly derived bars (run by the asset checks of derived_bars).

They recompute, independently of ``bars.derive_bars``, what must hold between the 1m bars and the
bars derived from them, so that a bug in derivation or a corrupted write shows up as a failed check.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candleflow.market.calendar import HOURS_COLUMNS, bar_hours, session_index
from candleflow.market.intervals import DAILY, INTRADAY_SECONDS
from candleflow.market.validation import format_utc


@dataclass
class CheckOutcome:
    name: str
    symbols_checked: int
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


def combined_checks(outcomes: Iterable[CheckOutcome], count: Callable[[int, int], int]) -> list[CheckOutcome]:
    """One outcome per check name, in order of first appearance, with each symbol's first failure.
    ``count`` combines the symbols checked: ``max`` where the outcomes saw the same symbols (chunks
    of a window), ``operator.add`` where they saw different ones (shards of a run)."""
    merged: dict[str, CheckOutcome] = {}
    for outcome in outcomes:
        into = merged.get(outcome.name)
        if into is None:
            merged[outcome.name] = CheckOutcome(outcome.name, outcome.symbols_checked, dict(outcome.failures))
            continue
        into.symbols_checked = count(into.symbols_checked, outcome.symbols_checked)
        for symbol, reason in outcome.failures.items():
            into.failures.setdefault(symbol, reason)
    return list(merged.values())


def _first_failure(outcome: CheckOutcome, frame: pd.DataFrame, mask: np.ndarray, what: str) -> None:
    for _, row in frame.loc[mask].drop_duplicates("symbol").iterrows():
        outcome.failures.setdefault(row["symbol"], f"{what} at {format_utc(row['bar_start'])}")


def ohlc_consistent(bars: Mapping[str, pd.DataFrame]) -> CheckOutcome:
    """Values finite; low <= open, close <= high; prices positive; volume not negative; minutes positive."""
    outcome = CheckOutcome("ohlc_consistent", _symbol_count(bars))
    for interval, frame in bars.items():
        values = frame[["open", "high", "low", "close", "volume"]].to_numpy(np.float64)
        o, h, l, c, v = values.T
        _first_failure(outcome, frame, ~np.isfinite(values).all(axis=1),
                       f"{interval} bar has a non-finite value")
        bad = (l > np.minimum(o, c)) | (h < np.maximum(o, c)) | (l <= 0) | (v < 0)
        _first_failure(outcome, frame, bad, f"{interval} bar violates low<=open,close<=high")
    return outcome


def _session_position(frame: pd.DataFrame, sessions: pd.DataFrame,
                      interval: str) -> tuple[np.ndarray, np.ndarray]:
    """Index of the session whose hours for ``interval`` bars each bar falls in (-1 if none:
    outside them) and seconds since those hours began."""
    hours = bar_hours(interval)
    opens = sessions[HOURS_COLUMNS[hours][0]].to_numpy()
    ts = frame["bar_start"].to_numpy()
    index = session_index(ts, sessions, hours=hours)
    return index, ts - opens[np.clip(index, 0, None)]


def aligned_bars(bars: Mapping[str, pd.DataFrame], sessions: pd.DataFrame) -> CheckOutcome:
    """Every derived bar starts on its session's grid (open + k * interval), once per symbol."""
    outcome = CheckOutcome("aligned_bars", _symbol_count(bars))
    for interval, frame in bars.items():
        index, offset = _session_position(frame, sessions, interval)
        step = INTRADAY_SECONDS.get(interval)
        off_grid = (index < 0) | ((offset != 0) if interval == DAILY else (offset % step != 0))
        _first_failure(outcome, frame, off_grid, f"{interval} bar off the session grid")
        _first_failure(outcome, frame, frame.duplicated(["symbol", "bar_start"]).to_numpy(),
                       f"duplicate {interval} bar")
    return outcome


def no_unexpected_gaps(minutes: pd.DataFrame, bars: Mapping[str, pd.DataFrame],
                       sessions: pd.DataFrame) -> CheckOutcome:
    """Each derived bar exists exactly where 1m bars of the hours it is made of exist (the regular
    hours, or for intraday bars the extended ones with ``extended_hours_bars``), and its minutes
    count them all.

    Missing derived bars are allowed only where the source delivered no 1m bar (a gap the source
    reports), never elsewhere. Minutes outside those hours make no derived bar, and are no gap.
    """
    outcome = CheckOutcome("no_unexpected_gaps", _symbol_count(bars))
    for interval, frame in bars.items():
        index, offset = _session_position(minutes, sessions, interval)
        inside = index >= 0
        offset = offset[inside]
        into_bar = offset if interval == DAILY else offset % INTRADAY_SECONDS[interval]
        bucket = minutes["bar_start"].to_numpy()[inside] - into_bar
        expected = pd.DataFrame({"symbol": minutes["symbol"].to_numpy()[inside], "bar_start": bucket})
        expected = expected.groupby(["symbol", "bar_start"]).size().rename("expected").reset_index()
        joined = expected.merge(frame[["symbol", "bar_start", "minutes"]], how="outer",
                                on=["symbol", "bar_start"])
        wrong = (joined["expected"].fillna(0) != joined["minutes"].fillna(0)).to_numpy()
        _first_failure(outcome, joined, wrong, f"{interval} bar does not cover its 1m bars")
    return outcome


def _symbol_count(bars: Mapping[str, pd.DataFrame]) -> int:
    symbols = [f["symbol"].unique() for f in bars.values() if len(f)]
    return len(pd.unique(np.concatenate(symbols))) if symbols else 0
