"""Bar intervals candleflow knows, and their lengths."""

BASE_INTERVAL = "1m"
DAILY = "1d"

#: Intraday intervals in seconds. Daily bars are per session, so "1d" has no fixed length.
INTRADAY_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600}

#: Every interval, shortest first.
INTERVALS: tuple[str, ...] = (*INTRADAY_SECONDS, DAILY)

#: Intervals derived from 1-minute bars.
DERIVED_INTERVALS: tuple[str, ...] = ("5m", "15m", "30m", "1h", DAILY)


def check_interval(interval: str) -> str:
    """Return ``interval`` if candleflow knows it, else raise ValueError naming the known ones."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; known intervals: {', '.join(INTERVALS)}")
    return interval
