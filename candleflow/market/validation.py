"""Bad-row rules for incoming candles.

Every rule is checked per symbol; a symbol with any bad row is rejected whole, so that nothing of
its batch is half-written, and the rejection names the symbol, the bar time and the rule.
Rows must arrive in ascending time order per symbol, as a vendor prints them, and inside a session
of the exchange calendar, extended hours included (a bar at 1970-01-01 or on a Sunday would be
stored and then belong to no session). Prices and volumes are at most ``MAX_VALUE``, so that sums
of them over any bar or history stay finite, and prices at most ``MAX_PRICE``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from candleflow.market.calendar import ExchangeSessions, session_index
from candleflow.market.frames import PRICE_COLUMNS

#: Largest price or volume accepted: a real share volume never comes near it, and the sums and
#: price x volume products (VWAP) of such values stay far below a float's limit (1.8e308).
MAX_VALUE = 1e15
#: Largest price accepted (Berkshire Hathaway A, the dearest share, trades near 7e5): a fixed-point
#: price in units of 1e-9 read without its scale lands above it for anything dearer than a cent.
MAX_PRICE = 1e7


@dataclass(frozen=True)
class Rejection:
    symbol: str
    bar_start: int | None
    rule: str
    detail: str
    #: The file the offending row came from, where the source read files.
    file: str | None = None

    def __str__(self) -> str:
        when = "" if self.bar_start is None else f" at {format_utc(self.bar_start)}"
        where = "" if self.file is None else f" in {self.file}"
        return f"{self.symbol}{when}{where}: {self.rule} ({self.detail})"


def format_utc(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rule_masks(frame: pd.DataFrame) -> list[tuple[str, np.ndarray, str]]:
    """(rule, boolean mask of offending rows, detail columns) for every row-level rule."""
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype=np.float64)
    volume = frame["volume"].to_numpy(dtype=np.float64)
    o, h, l, c = prices.T
    finite = np.isfinite(prices).all(axis=1) & np.isfinite(volume)
    too_large = (prices > MAX_VALUE).any(axis=1) | (volume > MAX_VALUE)
    with np.errstate(invalid="ignore"):
        return [
            ("non-finite value", ~finite, "open,high,low,close,volume"),
            ("non-positive price", finite & (prices <= 0).any(axis=1), "open,high,low,close"),
            (f"value above {MAX_VALUE:g}", finite & too_large, "open,high,low,close,volume"),
            (f"price above {MAX_PRICE:g} (fixed-point prices read without their scale?)",
             finite & ~too_large & (prices > MAX_PRICE).any(axis=1), "open,high,low,close"),
            ("high below low", finite & (h < l), "high,low"),
            ("high below open or close", finite & (h < np.maximum(o, c)), "open,high,close"),
            ("low above open or close", finite & (l > np.minimum(o, c)), "open,low,close"),
            ("negative volume", finite & (volume < 0), "volume"),
        ]


def _session_masks(frame: pd.DataFrame, calendar: ExchangeSessions) -> list[tuple[str, np.ndarray, str]]:
    ts = frame["bar_start"].to_numpy(dtype=np.int64)
    sessions = calendar.sessions_near(int(ts.min()), int(ts.max()))
    index = session_index(ts, sessions, hours="extended")
    return [("outside every session", index < 0, "bar_start")]


def _order_masks(frame: pd.DataFrame) -> list[tuple[str, np.ndarray, str]]:
    symbol = frame["symbol"].to_numpy()
    ts = frame["bar_start"].to_numpy(dtype=np.int64)
    same_symbol = np.zeros(len(frame), dtype=bool)
    step = np.zeros(len(frame), dtype=np.int64)
    if len(frame) > 1:
        same_symbol[1:] = symbol[1:] == symbol[:-1]
        step[1:] = ts[1:] - ts[:-1]
    duplicate = frame.duplicated(["symbol", "bar_start"], keep="first").to_numpy()
    return [
        ("duplicate timestamp", duplicate, "bar_start"),
        ("out-of-order timestamp", same_symbol & (step < 0) & ~duplicate, "bar_start"),
    ]


def validate_candles(frame: pd.DataFrame, calendar: ExchangeSessions,
                     files: Sequence[str] = ()) -> tuple[pd.DataFrame, list[Rejection]]:
    """Split ``frame`` into the rows of clean symbols and one Rejection per rejected symbol.

    With ``files`` (``SourceBatch.files``), the frame's ``file`` column names each row's file,
    and a rejection names the offending row's file.

    The frame holds candle columns in arrival order; rows of one symbol are expected to be
    contiguous (a symbol appearing in two separate runs is reported as out of order). Bars must
    start inside the extended hours of a session of ``calendar``.
    """
    if frame.empty:
        return frame, []
    rejections: dict[str, Rejection] = {}
    for rule, mask, columns in _rule_masks(frame) + _session_masks(frame, calendar) + _order_masks(frame):
        offenders = frame.loc[mask & ~frame["symbol"].isin(list(rejections)).to_numpy()]
        for _, row in offenders.drop_duplicates("symbol").iterrows():
            values = ", ".join(f"{c}={row[c]}" for c in columns.split(","))
            file = files[int(row["file"])] if files else None
            rejections[row["symbol"]] = Rejection(row["symbol"], int(row["bar_start"]), rule, values, file)
    interleaved = _interleaved_symbols(frame)
    for symbol in interleaved - set(rejections):
        rejections[symbol] = Rejection(symbol, None, "out-of-order timestamp",
                                       "rows of the symbol are not contiguous")
    clean = frame[~frame["symbol"].isin(list(rejections))]
    return clean, sorted(rejections.values(), key=lambda r: r.symbol)


def _interleaved_symbols(frame: pd.DataFrame) -> set[str]:
    symbol = frame["symbol"].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbol[1:] != symbol[:-1]])
    runs = pd.Series(symbol[starts]).value_counts()
    return set(runs[runs > 1].index)
