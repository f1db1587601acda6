"""Synthetic candles: deterministic per (seed, symbol, session), well formed, daily == derived."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from candleflow.market.bars import derive_bars
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import CANDLE_COLUMNS, as_candle_frame, empty_candles
from candleflow.market.synthetic import synthetic_daily, synthetic_minutes

XNYS = ExchangeSessions()
# Includes Thanksgiving (no session) and the 13:00 close of 2024-11-29.
WINDOW = XNYS.sessions(dt.date(2024, 11, 25), dt.date(2024, 12, 4))
SYMBOLS = [f"T{i:02d}" for i in range(40)] + ["AAPL", "MSFT"]


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    return synthetic_minutes(SYMBOLS, WINDOW, seed=11)


def test_frame_contract(minutes):
    assert list(minutes.columns) == list(CANDLE_COLUMNS)
    assert minutes.dtypes.to_dict() == empty_candles().dtypes.to_dict()
    pd.testing.assert_frame_equal(minutes, as_candle_frame(minutes))  # sorted, canonical
    assert (minutes["minutes"] == 1).all() and minutes["complete"].all()
    assert set(minutes["symbol"]) == set(SYMBOLS)


def test_same_seed_same_frame_other_seed_other_prices(minutes):
    pd.testing.assert_frame_equal(minutes, synthetic_minutes(SYMBOLS, WINDOW, seed=11))
    other = synthetic_minutes(SYMBOLS[:3], WINDOW.iloc[:1], seed=12)
    first_day = minutes["bar_start"] < WINDOW["close"][0]
    mine = minutes[minutes["symbol"].isin(SYMBOLS[:3]) & first_day]
    assert not np.array_equal(other["close"].to_numpy()[:100], mine["close"].to_numpy()[:100])


def rows_of(frame: pd.DataFrame, symbol: str, sessions: pd.DataFrame) -> pd.DataFrame:
    inside = frame["bar_start"].between(sessions["open"].min(), sessions["close"].max() - 1)
    return frame[(frame["symbol"] == symbol) & inside].reset_index(drop=True)


@pytest.mark.parametrize("symbol", ["AAPL", "T07"])
def test_a_symbol_does_not_depend_on_what_else_was_requested(minutes, symbol):
    for part in (WINDOW.iloc[3:4], WINDOW.iloc[2:6], WINDOW.iloc[-1:]):
        alone = synthetic_minutes([symbol], part, seed=11)
        pd.testing.assert_frame_equal(alone, rows_of(minutes, symbol, part))
    # a wider window and a different companion set give the same rows again
    wide = XNYS.sessions(dt.date(2024, 10, 1), dt.date(2024, 12, 31))
    with_others = synthetic_minutes(["ZZZ", symbol, "AAA"], wide, seed=11)
    pd.testing.assert_frame_equal(
        rows_of(with_others, symbol, WINDOW), rows_of(minutes, symbol, WINDOW)
    )


def test_minute_counts_follow_the_session_length_less_a_few_missing(minutes):
    bar_start = minutes["bar_start"].to_numpy()
    session = np.searchsorted(WINDOW["open"].to_numpy(), bar_start, "right") - 1
    opens = WINDOW["open"].to_numpy()[session]
    closes = WINDOW["close"].to_numpy()[session]
    offset = bar_start - opens
    assert (offset % 60 == 0).all() and (bar_start < closes).all()
    counts = minutes.groupby([minutes["symbol"], session]).size()
    session_minutes = ((WINDOW["close"] - WINDOW["open"]) // 60).to_numpy()
    length = session_minutes[counts.index.get_level_values(1)]
    assert set(length) == {390, 210}
    missing = length - counts.to_numpy()
    assert (missing >= 0).all()
    assert 0.002 < missing.sum() / length.sum() < 0.01  # about 0.5% of minutes have no bar
    assert (missing <= 12).all()
    first_minute = pd.Series(offset).groupby([minutes["symbol"], session]).min()
    assert (first_minute == 0).all()  # a session's first minute is never missing


def test_prices_and_volumes_are_well_formed(minutes):
    o, h, l, c, v = (minutes[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert (h >= np.maximum(o, c)).all() and (l <= np.minimum(o, c)).all()
    assert (l > 0).all()
    for prices in (o, h, l, c):
        np.testing.assert_array_equal(prices, np.round(prices, 2))
    assert (v >= 1).all() and (v == np.round(v)).all()


def test_realistic_levels_returns_and_volume_profile():
    sessions = XNYS.sessions_ending(dt.date(2024, 12, 31), 120)
    daily = synthetic_daily([f"R{i:03d}" for i in range(60)], sessions, seed=3)
    assert daily["close"].between(1, 2000).all()
    returns = np.log(daily["close"]).groupby(daily["symbol"]).diff().dropna()
    assert 0.012 < returns.std() < 0.03
    regular = sessions.iloc[-8:-5]  # 2024-12-17..19, full days
    minutes = synthetic_minutes([f"R{i:03d}" for i in range(60)], regular, seed=3)
    opens = regular["open"].to_numpy()
    session = np.searchsorted(opens, minutes["bar_start"].to_numpy(), "right") - 1
    minute_of_session = (minutes["bar_start"].to_numpy() - opens[session]) // 60
    by_minute = minutes.groupby(minute_of_session)["volume"].mean()
    middle = by_minute.loc[150:240].mean()
    assert by_minute.loc[:29].mean() > 1.5 * middle and by_minute.loc[360:].mean() > 1.5 * middle


def test_daily_equals_derived_from_minutes(minutes):
    daily = synthetic_daily(SYMBOLS, WINDOW, seed=11)
    pd.testing.assert_frame_equal(daily, derive_bars(minutes, "1d", WINDOW))
    half_day = daily[daily["bar_start"] == WINDOW["open"][3]]
    assert (half_day["minutes"] <= 210).all() and (half_day["minutes"] > 200).all()


def test_daily_over_a_window_matches_its_pieces():
    sessions = XNYS.sessions_ending(dt.date(2024, 6, 28), 30)
    symbols = ["A", "B", "C"]
    whole = synthetic_daily(symbols, sessions, seed=5)
    pieces = pd.concat(
        [synthetic_daily(symbols, sessions.iloc[i : i + 7], seed=5) for i in range(0, 30, 7)]
    )
    pd.testing.assert_frame_equal(whole, as_candle_frame(pieces))


def test_empty_requests_and_sessions_before_the_epoch():
    assert synthetic_minutes([], WINDOW, seed=1).empty
    assert synthetic_daily(["A"], WINDOW.iloc[:0], seed=1).empty
    early = pd.DataFrame(
        {"session": [dt.date(1999, 12, 31)], "open": [946650600], "close": [946674000]}
    )
    with pytest.raises(ValueError, match="2000-01-03"):
        synthetic_minutes(["A"], early, seed=1)
