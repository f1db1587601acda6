"""The candle frame: the one in-memory shape every stage passes around.

A candle frame is a pandas DataFrame in long format, one row per (symbol, bar):

=========  =======  ==========================================================
column     dtype    meaning
=========  =======  ==========================================================
symbol     str      ticker, already validated (see ``candleflow.market.symbols``)
bar_start  int64    bar start time, Unix epoch seconds, UTC
open       float64
high       float64
low        float64
close      float64
volume     float64
minutes    int64    how many 1m bars went into the bar (1 for a 1m bar;
                    0 when the source gave a daily bar directly)
complete   bool     False while the bar's time window is still open
=========  =======  ==========================================================

Rows are sorted by (symbol, bar_start). Epoch seconds are used rather than datetime64 so that the
frame goes to and from SQLite and Postgres without time-zone conversion or string parsing.
"""

import numpy as np
import pandas as pd

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
OHLCV_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
CANDLE_COLUMNS: tuple[str, ...] = ("symbol", "bar_start", *OHLCV_COLUMNS, "minutes", "complete")

CANDLE_DTYPES: dict[str, object] = {
    "symbol": "str",
    "bar_start": np.int64,
    **{c: np.float64 for c in OHLCV_COLUMNS},
    "minutes": np.int64,
    "complete": bool,
}


def empty_candles() -> pd.DataFrame:
    """A candle frame with no rows and the right dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in CANDLE_DTYPES.items()})


def as_candle_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in canonical order and dtypes, rows sorted by (symbol, bar_start), index reset."""
    out = frame.loc[:, list(CANDLE_COLUMNS)].astype(CANDLE_DTYPES)
    return out.sort_values(["symbol", "bar_start"], kind="stable").reset_index(drop=True)
