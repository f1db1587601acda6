"""Bars a run has just written or read, handed to its later stages without reading them again.

In a universe run the stages would otherwise read from the store what the step wrote a moment
earlier (every 1m bar of the session for derived bars, the session's derived bars for indicators
and scans), and the indicators and the scans would each read the same daily history.

``RecentBars`` keeps, per interval, either the frame just written or the last complete read:

- a written frame serves a read only for the symbols whose stored rows in the kept range are
  exactly the kept rows: the store counts them (an index scan, not a read), and since every kept
  row was written, equal counts mean equal rows. A symbol with more stored rows (minutes landed by
  an earlier run, say) is read from the store;
- a read result is the store's content for its symbols and time range, and serves any read inside
  them as it is. It stays true because every write of the run's stages goes through ``keep``.
  The one exception, the derived-bars stage marking open bars complete, forgets what is kept
  when it changes a bar (``forget_all``), and the base interval's bars are always complete.

Over a window taken chunk by chunk (``candleflow.pipeline.chunks``) the warm-up is carried:

- a read that starts inside a kept read result and ends after it is served from the kept rows up
  to their end and from the store after it, and becomes the kept read result;
- bars written just after (or inside) a kept read result, for some of its symbols, join it when
  the store holds no other bars of those symbols from the first written bar on (counted). The
  joined result starts where the reads of the chunk before started (what came earlier is
  dropped), so it holds one chunk's warm-up and bars, whatever the window's length.
"""

from dataclasses import dataclass

import pandas as pd

from candleflow.market.frames import as_candle_frame, empty_candles
from candleflow.store import MarketDataRepository


@dataclass(frozen=True)
class _Kept:
    frame: pd.DataFrame
    since: int
    #: For a read result: its end and its symbols. None for a written frame.
    until: int | None = None
    symbols: frozenset[str] | None = None

    def covers(self, symbols: list[str], start: int, end: int) -> bool:
        return (self.until is not None and self.since <= start and end <= self.until
                and self.symbols.issuperset(symbols))


#: The end of a read result that holds every stored bar of its symbols from its start on.
OPEN_END = 2**62


class RecentBars:
    def __init__(self, store: MarketDataRepository):
        self.store = store
        self._kept: dict[str, _Kept] = {}
        #: Per interval, the earliest start a read asked for since the kept frame was kept.
        self._first_read: dict[str, int] = {}

    def keep(self, interval: str, frame: pd.DataFrame) -> None:
        """Remember ``frame``, the bars of ``interval`` just written (a candle frame)."""
        if frame.empty:
            self._kept.pop(interval, None)
        else:
            self._kept[interval] = self._joined(interval, frame) or _Kept(frame, int(frame["bar_start"].min()))
        self._first_read.pop(interval, None)

    def forget(self, interval: str) -> None:
        self._kept.pop(interval, None)

    def forget_all(self) -> None:
        self._kept.clear()

    def read(self, symbols: list[str], interval: str, start: int, end: int) -> pd.DataFrame:
        """What ``store.read_candles(symbols, interval, start, end)`` returns, from memory where
        the kept bars are the stored bars."""
        self._first_read[interval] = min(start, self._first_read.get(interval, start))
        kept = self._kept.get(interval)
        if kept is not None and kept.covers(symbols, start, end):
            frame = kept.frame
            inside = frame["symbol"].isin(symbols) & frame["bar_start"].between(start, end - 1)
            return frame[inside].reset_index(drop=True)
        if kept is not None and kept.until is not None and kept.covers(symbols, start, kept.until):
            frame = self._kept_then_stored(kept, symbols, interval, start, end)
        elif kept is None or end <= kept.since:
            frame = self.store.read_candles(symbols, interval, start, end)
        else:
            frame = self._stored_and_kept(kept, symbols, interval, start, end)
        self._kept[interval] = _Kept(frame, start, end, frozenset(symbols))
        return frame

    def _kept_then_stored(self, kept: _Kept, symbols: list[str], interval: str, start: int,
                          end: int) -> pd.DataFrame:
        """A read from inside the kept read result to after its end."""
        frame = kept.frame
        earlier = frame[frame["symbol"].isin(symbols) & (frame["bar_start"] >= start)]
        later = self.store.read_candles(symbols, interval, kept.until, end)
        return _sorted(pd.concat([earlier, later], ignore_index=True))

    def _joined(self, interval: str, written: pd.DataFrame) -> _Kept | None:
        """The kept read result with ``written`` in it, or None where they do not join (see the
        module docstring)."""
        kept = self._kept.get(interval)
        since = int(written["bar_start"].min())
        symbols = written["symbol"].unique().tolist()
        if kept is None or kept.until is None or since < kept.since or not kept.symbols.issuperset(symbols):
            return None
        if interval not in self._first_read:
            return None  # nothing read it since it was kept: no warm-up to carry
        # from the end of the kept rows (or the first written bar) on, the store must hold only
        # the written bars (a session's bars follow the kept ones after a night without bars)
        stored = self.store.count_candles(symbols, interval, min(since, kept.until), None)
        if stored != written["symbol"].value_counts().to_dict():
            return None  # it holds other bars of theirs there: not all of them are in memory
        first = max(kept.since, self._first_read[interval])
        frame = kept.frame
        before = frame[frame["symbol"].isin(symbols) & frame["bar_start"].between(first, since - 1)]
        return _Kept(_sorted(pd.concat([before, written], ignore_index=True)), first, OPEN_END,
                     frozenset(symbols))

    def _stored_and_kept(self, kept: _Kept, symbols: list[str], interval: str, start: int,
                         end: int) -> pd.DataFrame:
        split = max(start, kept.since)
        frame = kept.frame
        recent = frame[frame["symbol"].isin(symbols) & frame["bar_start"].between(split, end - 1)]
        stored_counts = self.store.count_candles(symbols, interval, split, end)
        kept_counts = recent["symbol"].value_counts().to_dict()
        exact = {s for s in symbols if stored_counts.get(s, 0) == kept_counts.get(s, 0)}
        others = [s for s in symbols if s not in exact]
        parts = [
            self.store.read_candles(symbols, interval, start, split) if start < split else empty_candles(),
            recent[recent["symbol"].isin(exact)],
            self.store.read_candles(others, interval, split, end) if others else empty_candles(),
        ]
        return as_candle_frame(pd.concat([p for p in parts if not p.empty] or [empty_candles()],
                                         ignore_index=True))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """A candle frame in the store's read order (symbol, bar_start)."""
    return as_candle_frame(frame.sort_values(["symbol", "bar_start"], kind="stable", ignore_index=True))
