"""Each bad-row rule rejects the whole symbol with a message naming symbol, time and rule."""

import numpy as np
import pandas as pd
import pytest

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.symbols import SymbolError, read_universe_file, require_known, validate_symbol
from candleflow.market.validation import validate_candles

T0 = 1_709_908_200  # 2024-03-08 14:30:00 UTC
XNYS = ExchangeSessions()


def candles(symbol: str, n: int = 5) -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": symbol, "bar_start": T0 + 60 * np.arange(n),
        "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0,
    })


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("close", np.nan, "non-finite value"),
    ("open", np.inf, "non-finite value"),
    ("low", -1.0, "non-positive price"),
    ("open", 0.0, "non-positive price"),
    ("high", 8.5, "high below low"),
    ("high", 10.2, "high below open or close"),
    ("low", 10.4, "low above open or close"),
    ("volume", -5.0, "negative volume"),
    ("volume", 1e308, "value above 1e+15"),
    ("high", 2e15, "value above 1e+15"),
])
def test_row_rules_reject_the_symbol(column, value, rule):
    bad = candles("BAD")
    bad.loc[2, column] = value
    clean, rejections = validate_candles(pd.concat([candles("GOOD"), bad], ignore_index=True), XNYS)
    assert set(clean["symbol"]) == {"GOOD"} and len(clean) == 5
    assert [(r.symbol, r.rule, r.bar_start) for r in rejections] == [("BAD", rule, T0 + 120)]
    assert str(rejections[0]).startswith(f"BAD at 2024-03-08T14:32:00Z: {rule} (")


@pytest.mark.parametrize(("offset", "when"), [
    (-T0, "1970-01-01T00:00:00Z"),  # before the calendar
    (-5 * 3600 - 30 * 60 - 60, "2024-03-08T08:59:00Z"),  # 03:59 New York, before the pre-market
    (10 * 3600 + 30 * 60, "2024-03-09T01:00:00Z"),  # 20:00 New York, the end of the after hours
    (2 * 86400, "2024-03-10T14:30:00Z"),  # a Sunday
    (36525 * 86400, "2124-03-09T14:30:00Z"),  # after the calendar
])
def test_bar_outside_every_session(offset, when):
    bad = candles("BAD")
    bad.loc[0, "bar_start"] = T0 + offset
    clean, rejections = validate_candles(pd.concat([candles("GOOD"), bad], ignore_index=True), XNYS)
    assert set(clean["symbol"]) == {"GOOD"}
    assert str(rejections[0]) == f"BAD at {when}: outside every session (bar_start={T0 + offset})"


def test_extended_hours_are_inside_a_session():
    frame = candles("AAA", 2).assign(bar_start=[T0 - 5 * 3600 - 30 * 60, T0 + 10 * 3600 + 29 * 60])
    clean, rejections = validate_candles(frame, XNYS)  # 04:00 and 19:59 New York
    assert rejections == [] and clean.equals(frame)


def test_duplicate_timestamp():
    bad = candles("BAD")
    bad.loc[3, "bar_start"] = bad.loc[2, "bar_start"]
    clean, rejections = validate_candles(pd.concat([bad, candles("GOOD")], ignore_index=True), XNYS)
    assert set(clean["symbol"]) == {"GOOD"}
    assert str(rejections[0]) == "BAD at 2024-03-08T14:32:00Z: duplicate timestamp (bar_start=1709908320)"


def test_out_of_order_timestamp():
    bad = candles("BAD").iloc[[0, 2, 1, 3, 4]].reset_index(drop=True)
    _, rejections = validate_candles(bad, XNYS)
    assert (rejections[0].rule, rejections[0].bar_start) == ("out-of-order timestamp", T0 + 60)


def test_interleaved_symbol_rows_are_out_of_order():
    frame = pd.concat([candles("AAA", 2), candles("BBB", 2), candles("AAA", 2).assign(
        bar_start=lambda f: f["bar_start"] + 600)], ignore_index=True)
    clean, rejections = validate_candles(frame, XNYS)
    assert set(clean["symbol"]) == {"BBB"}
    assert [(r.symbol, r.rule) for r in rejections] == [("AAA", "out-of-order timestamp")]


def test_clean_batch_passes_untouched():
    frame = pd.concat([candles("AAA"), candles("BBB")], ignore_index=True)
    clean, rejections = validate_candles(frame, XNYS)
    assert rejections == [] and clean.equals(frame)


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BF-B", "X", "A1"])
def test_valid_symbols(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize("symbol", ["", "aapl", "1ABC", "TOOLONGX", "A B", "A;DROP", "../x", "BRK.BBBB"])
def test_malformed_symbols(symbol):
    with pytest.raises(SymbolError, match="malformed symbol"):
        validate_symbol(symbol)


def test_unknown_symbol():
    with pytest.raises(SymbolError, match="unknown symbol\\(s\\) not in the universe: ZZZ"):
        require_known(["AAPL", "ZZZ"], ["AAPL", "MSFT"])


def test_universe_file(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("# comment\nAAPL\n\nMSFT  # inline\nAAPL\n")
    assert read_universe_file(path) == ["AAPL", "MSFT"]
    path.write_text("AAPL\nbad one\n")
    with pytest.raises(SymbolError, match="u.txt:2: not a valid symbol"):
        read_universe_file(path)
