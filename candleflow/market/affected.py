"""Which derived bars new 1m bars touch, and which finer bars each interval is built from.

New minutes starting at ``t`` change, per interval, the bar containing ``t`` and every later one:
so a run that receives them rewrites each interval from ``affected_since(t, interval, sessions)``
on and leaves the bars before it alone. A minute outside the regular hours (pre-market, after
hours) is in no bar: it affects the bars from the next session's open on, or none of ``sessions``.
Bars are aligned to the session open, so every interval is a whole number of the finer interval
``BUILT_FROM`` names (15m = 3 x 5m, 1h = 2 x 30m, a daily bar = the session's 30m bars): a coarser
bar is an aggregate of the stored finer bars, and an incremental run never reads more than one
session's 30m bars to rebuild the daily bar.
"""

import numpy as np
import pandas as pd

from candleflow.market.calendar import HOURS_COLUMNS, NEXT_SESSION, bar_hours, session_index
from candleflow.market.intervals import BASE_INTERVAL, DAILY, INTRADAY_SECONDS

#: The finer interval each derived interval is aggregated from, in build order.
BUILT_FROM: dict[str, str] = {"5m": BASE_INTERVAL, "15m": "5m", "30m": "15m", "1h": "30m", DAILY: "30m"}


def affected_since(t: int, interval: str, sessions: pd.DataFrame) -> int:
    """Start of the first ``interval`` bar of ``sessions`` that the 1m bar at ``t`` (epoch s)
    changes: the bar containing it, else (``t`` outside the hours ``interval`` bars are made of,
    ``bar_hours``) the first bar after it; the close of the last session if there is none.
    """
    hours = bar_hours(interval)
    open_column, close_column = HOURS_COLUMNS[hours]
    k = int(session_index(np.array([t], np.int64), sessions, hours=hours, outside=NEXT_SESSION)[0])
    if k == len(sessions):
        return int(sessions[close_column].iloc[-1])
    open_ = int(sessions[open_column].iloc[k])
    if interval == DAILY or t < open_:
        return open_
    seconds = INTRADAY_SECONDS[interval]
    return t - (t - open_) % seconds


def built_on(interval: str) -> list[str]:
    """The intervals built from ``interval`` bars, directly or through finer ones, in build order."""
    built = [interval]
    for derived, source in BUILT_FROM.items():
        if source in built:
            built.append(derived)
    return built[1:]


def affected_bars(t: int, sessions: pd.DataFrame) -> dict[str, int]:
    """``affected_since`` for 1m and every derived interval."""
    return {interval: affected_since(t, interval, sessions) for interval in (BASE_INTERVAL, *BUILT_FROM)}
