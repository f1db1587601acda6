"""The session VWAP: cumulative typical price (high + low + close) / 3 times volume over cumulative
volume, restarting at each session's first bar. One implementation for the stored indicator
(``candleflow.market.indicators``) and the formula language's ``vwap`` (``BarPanel.vwap``)."""

import numpy as np


def session_vwap(high, low, close, volume, restart: np.ndarray) -> np.ndarray:
    """Session VWAP along the last axis of the inputs (1-D, or 2-D with one row per symbol).

    ``restart`` (1-D, as long as the last axis, ``restart[0]`` True) flags the positions where the
    sums restart. A bar whose price or volume is not finite counts as no trade; NaN where there is
    no volume since the restart. One running sum less its value where the session began: the
    rounding error relative to a session's sums is about (number of sessions) * 1e-16, far below
    any use.
    """
    typical = (high + low + close) / 3.0
    traded = np.isfinite(typical) & np.isfinite(volume)
    weighted = np.cumsum(np.where(traded, typical * volume, 0.0), axis=-1)
    total = np.cumsum(np.where(traded, volume, 0.0), axis=-1)
    first = np.flatnonzero(restart)
    prior = np.repeat(first - 1, np.diff(np.append(first, len(restart))))
    before = prior >= 0  # positions after the first session
    weighted[..., before] -= weighted[..., prior[before]]
    total[..., before] -= total[..., prior[before]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / total, np.nan)
