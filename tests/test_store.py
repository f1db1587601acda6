"""The domain store on SQLite and on the Postgres server: idempotent upserts, whole-batch writes."""

import json

import numpy as np
import pandas as pd
import pytest

from candleflow.store.bulk import StoreWriteError

T0 = 1_709_908_200


def candle_frame(symbols=("AAA", "BBB"), n=50, close=10.0) -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": np.repeat(list(symbols), n),
        "bar_start": np.tile(T0 + 60 * np.arange(n), len(symbols)),
        "open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 100.0,
        "minutes": 1, "complete": True,
    })


def test_candles_round_trip_and_idempotent(store):
    frame = candle_frame()
    assert store.write_candles(frame, "1m") == 100
    assert store.write_candles(frame, "1m") == 100
    assert store.count_rows("candles") == 100
    pd.testing.assert_frame_equal(store.read_candles(["AAA", "BBB"], "1m"), frame)
    assert store.read_candles(["AAA"], "5m").empty


def test_upsert_updates_values(store):
    store.write_candles(candle_frame(), "1m")
    store.write_candles(candle_frame(symbols=("AAA",), close=20.0), "1m")
    stored = store.read_candles(["AAA", "BBB"], "1m")
    assert len(stored) == 100
    assert stored.groupby("symbol")["close"].unique().map(list).to_dict() == {"AAA": [20.0], "BBB": [10.0]}


def test_time_window_read(store):
    store.write_candles(candle_frame(), "1m")
    window = store.read_candles(["AAA"], "1m", start=T0 + 600, end=T0 + 1200)
    assert window["bar_start"].tolist() == [T0 + 60 * i for i in range(10, 20)]


def test_failed_batch_writes_nothing(store):
    store.write_candles(candle_frame(symbols=("AAA",)), "1m")
    batch = candle_frame(symbols=("AAA", "BBB"), close=30.0)
    batch = batch.astype({"volume": object})
    batch.loc[len(batch) - 1, "volume"] = None  # violates NOT NULL on the very last row
    with pytest.raises(StoreWriteError, match="writing 100 rows to candles failed: .*volume"):
        store.write_candles(batch, "1m")
    stored = store.read_candles(["AAA", "BBB"], "1m")
    assert len(stored) == 50 and set(stored["close"]) == {10.0}


def test_duplicate_keys_in_batch_refused(store):
    frame = pd.concat([candle_frame(symbols=("AAA",), n=2)] * 2, ignore_index=True)
    with pytest.raises(ValueError, match="same primary key twice"):
        store.write_candles(frame, "1m")
    assert store.count_rows("candles") == 0


def test_indicators_idempotent(store):
    values = pd.DataFrame({"symbol": ["AAA"] * 3, "interval": "1d", "bar_start": [T0, T0 + 1, T0 + 2],
                           "name": "sma_20", "value": [1.5, 2.5, 3.5]})
    store.write_indicators(values)
    store.write_indicators(values)
    assert store.count_rows("indicator_values") == 3
    assert store.read_indicators(["AAA"], "1d")["value"].tolist() == [1.5, 2.5, 3.5]


def signal_rows(symbols, bar_start=T0):
    return pd.DataFrame({"scan": "s1", "symbol": list(symbols), "interval": "1d", "bar_start": bar_start,
                         "formula": "close > 1", "term_values": json.dumps({"close": 2.0})})


def test_signals_replace_window(store):
    store.replace_signals(signal_rows(["AAA", "BBB"]), ["s1"], ["AAA", "BBB"], since=T0)
    store.replace_signals(signal_rows(["AAA", "BBB"]), ["s1"], ["AAA", "BBB"], since=T0)
    assert store.count_rows("signals") == 2
    # BBB stops matching: a re-run of the window removes its stale signal, other scans untouched.
    store.replace_signals(signal_rows(["AAA"]), ["s1"], ["AAA", "BBB"], since=T0)
    stored = store.read_signals()
    assert stored["symbol"].tolist() == ["AAA"]
    assert stored["term_values"].tolist() == [{"close": 2.0}]


def test_rewriting_unchanged_rows_leaves_them_untouched(postgres_url):
    """On Postgres an unchanged row keeps its row version (xmin); a changed one gets a new one."""
    from candleflow.store import CandleStore

    store = CandleStore(postgres_url)
    store.create_schema()
    store.write_candles(candle_frame(), "1m")

    def versions():
        with store.engine.connect() as conn:
            return dict(conn.exec_driver_sql(
                "SELECT symbol || ':' || bar_start, xmin::text FROM candles").fetchall())

    before = versions()
    store.write_candles(candle_frame(symbols=("AAA",)), "1m")
    store.write_candles(candle_frame(symbols=("BBB",), n=1, close=11.0), "1m")
    after = versions()
    changed = {key for key in before if before[key] != after[key]}
    store.dispose()
    assert changed == {f"BBB:{T0}"}


def test_count_candles_counts_what_read_candles_selects(store):
    store.write_candles(candle_frame(), "1m")
    counts = store.count_candles(["AAA", "BBB", "ZZZ"], "1m", T0 + 600, T0 + 1200)
    assert counts == {"AAA": 10, "BBB": 10}
    assert counts["AAA"] == len(store.read_candles(["AAA"], "1m", T0 + 600, T0 + 1200))


def test_a_large_postgres_write_lands_whole_per_symbol(postgres_url, monkeypatch):
    """Split over two connections, a write still lands each symbol's rows whole or not at all."""
    from candleflow.store import CandleStore, store as store_module

    monkeypatch.setattr(store_module, "PARALLEL_WRITE_ROWS", 10)
    store = CandleStore(postgres_url)
    store.create_schema()
    frame = candle_frame(symbols=("AAA", "BBB", "CCC", "DDD"))
    assert store.write_candles(frame, "1m") == 200
    assert store.write_candles(frame, "1m") == 200
    pd.testing.assert_frame_equal(store.read_candles(["AAA", "BBB", "CCC", "DDD"], "1m"), frame)

    batch = candle_frame(symbols=("AAA", "BBB"), close=30.0).astype({"volume": object})
    batch.loc[len(batch) - 1, "volume"] = None  # BBB's last row violates NOT NULL
    with pytest.raises(StoreWriteError, match="volume"):
        store.write_candles(batch, "1m")
    closes = store.read_candles(["AAA", "BBB"], "1m").groupby("symbol")["close"].unique().map(list)
    store.dispose()
    assert closes.to_dict() == {"AAA": [30.0], "BBB": [10.0]}
