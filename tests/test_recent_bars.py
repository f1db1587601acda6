"""RecentBars: reads served from the frames a run just wrote or read equal the store's own reads."""

import pandas as pd
import pytest

from candleflow.pipeline.recent_bars import RecentBars
from tests.test_store import T0, candle_frame


class CountingStore:
    """The real store, with its reads counted (to see which reads RecentBars saved)."""

    def __init__(self, store):
        self.store, self.reads = store, []

    def read_candles(self, symbols, interval, start=None, end=None):
        self.reads.append((tuple(symbols), interval, start, end))
        return self.store.read_candles(symbols, interval, start, end)

    def count_candles(self, *args):
        return self.store.count_candles(*args)


@pytest.fixture
def counted(store):
    return CountingStore(store)


def test_written_bars_are_served_only_where_they_are_all_the_stored_bars(store, counted):
    store.write_candles(candle_frame(symbols=("BBB",), n=5, close=7.0), "1m")  # landed earlier
    batch = candle_frame(symbols=("AAA", "BBB"), close=10.0).query("symbol == 'AAA' or bar_start >= @T0 + 300")
    store.write_candles(batch, "1m")
    recent = RecentBars(counted)
    recent.keep("1m", batch)

    got = recent.read(["AAA", "BBB"], "1m", T0 - 600, T0 + 3000)

    pd.testing.assert_frame_equal(got, store.read_candles(["AAA", "BBB"], "1m", T0 - 600, T0 + 3000))
    assert len(got) == 100 and sorted(set(got.query("symbol == 'BBB'")["close"])) == [7.0, 10.0]
    # AAA came from memory: only the range before the kept bars and BBB were read.
    assert counted.reads == [(("AAA", "BBB"), "1m", T0 - 600, T0), (("BBB",), "1m", T0, T0 + 3000)]


def test_a_read_serves_later_reads_inside_it_without_the_store(store, counted):
    store.write_candles(candle_frame(symbols=("AAA", "BBB", "CCC")), "1d")
    recent = RecentBars(counted)
    recent.read(["AAA", "BBB", "CCC"], "1d", T0, T0 + 3000)

    got = recent.read(["BBB", "CCC"], "1d", T0 + 600, T0 + 1200)

    pd.testing.assert_frame_equal(got, store.read_candles(["BBB", "CCC"], "1d", T0 + 600, T0 + 1200))
    assert len(counted.reads) == 1
    recent.read(["AAA"], "1d", T0 - 60, T0 + 1200)  # starts before the kept read: the store again
    assert len(counted.reads) == 2


def test_a_write_replaces_what_was_kept_for_its_interval(store, counted):
    store.write_candles(candle_frame(symbols=("AAA",)), "5m")
    recent = RecentBars(counted)
    recent.read(["AAA"], "5m", T0, T0 + 3000)
    changed = candle_frame(symbols=("AAA",), close=20.0)
    store.write_candles(changed, "5m")
    recent.keep("5m", changed)

    got = recent.read(["AAA"], "5m", T0, T0 + 3000)

    assert set(got["close"]) == {20.0}
    pd.testing.assert_frame_equal(got, store.read_candles(["AAA"], "5m", T0, T0 + 3000))


def shifted(frame: pd.DataFrame, seconds: int, close: float) -> pd.DataFrame:
    return frame.assign(bar_start=frame["bar_start"] + seconds, open=close, high=close + 1, low=close - 1,
                        close=close)


def test_the_next_chunk_is_carried_on_from_the_kept_read(store, counted):
    """A chunk's read of history, then the next chunk's bars written after a night without bars:
    the next chunk's read (later start, later end) comes from memory, and equals the store's."""
    history = candle_frame(symbols=("AAA", "BBB"))
    store.write_candles(history, "1d")
    recent = RecentBars(counted)
    recent.read(["AAA", "BBB"], "1d", T0, T0 + 3000)
    night = 20 * 3600
    written = shifted(history, night, close=12.0).query("bar_start < @T0 + @night + 600")
    store.write_candles(written, "1d")
    recent.keep("1d", written)

    got = recent.read(["AAA", "BBB"], "1d", T0 + 600, T0 + night + 600)

    pd.testing.assert_frame_equal(got, store.read_candles(["AAA", "BBB"], "1d", T0 + 600, T0 + night + 600))
    assert len(counted.reads) == 1  # only the first read went to the store
    later = recent.read(["AAA"], "1d", T0 + 1200, T0 + night + 3600)  # past the written bars
    pd.testing.assert_frame_equal(later, store.read_candles(["AAA"], "1d", T0 + 1200, T0 + night + 3600))
    assert len(counted.reads) == 1


def test_written_bars_do_not_join_where_the_store_holds_more(store, counted):
    history = candle_frame(symbols=("AAA",))
    store.write_candles(history, "1d")
    recent = RecentBars(counted)
    recent.read(["AAA"], "1d", T0, T0 + 3000)
    store.write_candles(shifted(history, 7200, close=9.0), "1d")  # a later run's bars, stored before
    written = shifted(history, 3600, close=12.0).head(5)
    store.write_candles(written, "1d")
    recent.keep("1d", written)

    got = recent.read(["AAA"], "1d", T0, T0 + 3 * 3600)

    pd.testing.assert_frame_equal(got, store.read_candles(["AAA"], "1d", T0, T0 + 3 * 3600))
    assert sorted(set(got["close"])) == [9.0, 10.0, 12.0] and len(counted.reads) > 1
