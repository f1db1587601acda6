"""Limits of the formula language. Formulas are user input: everything is capped."""

import functools

from ..market.indicator_registry import WARMUP_BARS as WARMUP_BARS

#: Longest formula text accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting of brackets and of sub-expressions.
MAX_DEPTH = 32
#: Most syntax elements (names, numbers, operators, calls, ...) in one formula.
MAX_NODES = 256
#: Largest window argument (``n`` of sma, highest, any_of, ...), in bars.
MAX_WINDOW = 5000
#: Largest ``x[k]`` offset, in bars.
MAX_OFFSET = 1000
#: Largest magnitude of the literal exponent of ``**``.
MAX_EXPONENT = 10
# WARMUP_BARS: extra bars of history loaded (when available, not required) once a path uses a
# smoothed (recursive) indicator, so that its values match a full-history computation; declared
# with the indicators (candleflow.market.indicator_registry).
#: Largest history, in bars of one interval, that a formula may require.
MAX_HISTORY_BARS = 20000
@functools.cache
def session_seconds() -> int:
    """Seconds of one daily session, used to count how many daily bars an intraday lookback spans
    (``tf("1d", ...)`` in an intraday scan): the longest regular session of the configured
    calendar (``CANDLEFLOW_CALENDAR``; XNYS: 6.5 h, XTKS: 5 h, 24/7: 24 h), so that a calendar
    with short sessions loads enough days. Read on first use, not at import: every step process
    imports this module."""
    from candleflow.settings import read_settings  # the settings import the formula limits

    return read_settings().sessions().regular_session_seconds


#: Symbols evaluated together as one 2-D block.
CHUNK_SYMBOLS = 128
#: Wall-clock seconds one scan may take on one block of symbols, cross sections included (see
#: ``evaluate_scans``); the pipeline passes it to the engine.
SCAN_TIME_LIMIT_S = 60.0
