"""The landing-folder source: documented columns, CSV and Parquet, clear errors per file."""

import os
from datetime import date

import numpy as np
import pandas as pd
import pytest

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.csv_batch import read_csv_batch
from candleflow.sources.files import FileSource
from candleflow.sources.landed import landed_files

CSV_HEADER = "symbol,ts,open,high,low,close,volume\n"


def write_csv(folder, name, rows):
    (folder / name).write_text(CSV_HEADER + "".join(f"{r}\n" for r in rows))


def test_csv_and_parquet_minutes(tmp_path):
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2024-03-08T09:30:00-05:00,10,11,9,10.5,100",
                                     "AAPL,2024-03-08T14:31:00Z,10.5,11,10,10.8,50"])
    pd.DataFrame({"symbol": ["MSFT"], "ts": pd.to_datetime(["2024-03-11 09:30"]).tz_localize(
        "America/New_York"), "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5],
        "volume": [7.0]}).to_parquet(tmp_path / "MSFT_2024-03-11.parquet")
    batch = FileSource(tmp_path).fetch(["AAPL", "MSFT"], None)
    assert batch.errors == {}
    assert batch.candles[["symbol", "bar_start", "close"]].values.tolist() == [
        ["AAPL", 1709908200, 10.5], ["AAPL", 1709908260, 10.8], ["MSFT", 1710163800, 1.5]]


def test_window_filter(tmp_path):
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2024-03-08T14:30:00Z,10,11,9,10.5,100",
                                     "AAPL,2024-03-11T13:30:00Z,10,11,9,10.5,100"])
    sessions = ExchangeSessions().sessions(date(2024, 3, 11), date(2024, 3, 11))
    batch = FileSource(tmp_path).fetch(["AAPL"], sessions)
    assert batch.candles["bar_start"].tolist() == [1710163800]


@pytest.mark.parametrize(("content", "message"), [
    ("symbol,ts,open,high,low,close\nAAPL,2024-03-08T14:30:00Z,1,1,1,1\n", "AAPL.csv: missing column(s) volume"),
    (CSV_HEADER + "AAPL,2024-03-08 14:30:00,1,1,1,1,1\n", "AAPL.csv: ts '2024-03-08 14:30:00' has no UTC offset"),
    (CSV_HEADER + "AAPL,yesterday+00:00,1,1,1,1,1\n", "AAPL.csv: column ts is not ISO 8601"),
    (CSV_HEADER + "AAPL,2024-03-08T14:30:00Z,1,abc,1,1,1\n", "AAPL.csv: high 'abc' is not a number"),
    (CSV_HEADER + "MSFT,2024-03-08T14:30:00Z,1,1,1,1,1\n", "AAPL.csv: row for symbol 'MSFT' in a file of AAPL"),
    (CSV_HEADER + "AAPL,2024-03-08T14:30:30Z,1,1,1,1,1\n", "is not on a minute"),
    ('\x00\x01garbage"\n"', "AAPL.csv: "),
])
def test_malformed_file_fails_only_its_symbol(tmp_path, content, message):
    (tmp_path / "AAPL.csv").write_text(content)
    write_csv(tmp_path, "MSFT.csv", ["MSFT,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    batch = FileSource(tmp_path).fetch(["AAPL", "MSFT"], None)
    assert message in batch.errors["AAPL"]
    assert set(batch.candles["symbol"]) == {"MSFT"}


def test_missing_file_and_bad_names(tmp_path):
    write_csv(tmp_path, "MSFT.csv", ["MSFT,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    (tmp_path / "not a symbol.csv").write_text(CSV_HEADER)
    (tmp_path / "notes.txt").write_text("ignored")
    files, problems = landed_files(tmp_path)
    assert [f.symbol for f in files] == ["MSFT"]
    assert problems and problems[0].message.startswith("not a symbol.csv: malformed symbol")
    batch = FileSource(tmp_path).fetch(["AAPL"], None)
    assert batch.errors == {"AAPL": f"no landed file for AAPL in {tmp_path}"}


def test_daily_files_stamped_with_session_open(tmp_path):
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2024-03-08T00:00:00-05:00,10,11,9,10.5,1000",
                                     "AAPL,2024-03-11T00:00:00-04:00,10,11,9,10.5,1000"])
    batch = FileSource(tmp_path, base_interval="1d").fetch(["AAPL"], None)
    assert batch.candles["bar_start"].tolist() == [1709908200, 1710163800]
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2024-03-09T00:00:00-05:00,10,11,9,10.5,1000"])
    batch = FileSource(tmp_path, base_interval="1d").fetch(["AAPL"], None)
    assert batch.errors["AAPL"] == "AAPL: 2024-03-09 is not a trading session"


def test_many_small_files_read_in_one_pass_and_a_malformed_one_fails_alone(tmp_path):
    """The batch path (one parse for every file with the documented header) delivers exactly the
    values written; a file it cannot vouch for goes to the per-file reader and fails only its own
    symbol, with a message naming the file."""
    rng = np.random.default_rng(3)
    symbols = [f"S{i:03d}" for i in range(60)]
    written = pd.DataFrame({
        "symbol": np.repeat(symbols, 2),
        "bar_start": np.tile([1709908200, 1709908260], len(symbols)),  # 2024-03-08 14:30, 14:31 UTC
        "open": rng.random(120) * 100, "high": rng.random(120) * 100, "low": rng.random(120) * 100,
        "close": rng.random(120) * 100, "volume": rng.integers(0, 10_000, 120).astype(float)})
    for row in written.itertuples(index=False):
        minute = "1430" if row.bar_start == 1709908200 else "1431"
        ts = "2024-03-08T14:30:00Z" if minute == "1430" else "2024-03-08T09:31:00-05:00"
        write_csv(tmp_path, f"{row.symbol}_20240308T{minute}.csv",
                  [f"{row.symbol},{ts},{row.open!r},{row.high!r},{row.low!r},{row.close!r},{row.volume!r}"])
    broken = {  # each replaces the second minute of a symbol; the header is the documented one
        "S005": ("S005,2024-03-08T14:31:00Z,1,2,0.5,1.5,10\nS005,2024-03-08T14:32:00Z,1,2,0.5,1.5,10,11",
                 "S005_20240308T1431.csv: line 3 has 8 fields, the header has 7"),
        "S017": ("S017,2024-03-08T14:31:00Z,1,two,0.5,1.5,10", "S017_20240308T1431.csv: high 'two' is not a number"),
        "S030": ("S031,2024-03-08T14:31:00Z,1,2,0.5,1.5,10",
                 "S030_20240308T1431.csv: row for symbol 'S031' in a file of S030"),
        "S044": ("S044,2024-03-08 14:31:00,1,2,0.5,1.5,10",
                 "S044_20240308T1431.csv: ts '2024-03-08 14:31:00' has no UTC offset"),
    }
    for symbol, (line, _) in broken.items():
        write_csv(tmp_path, f"{symbol}_20240308T1431.csv", [line])
    files, _ = landed_files(tmp_path)
    _, left = read_csv_batch(files)
    assert sorted(f.path.name for f in left) == sorted(f"{s}_20240308T1431.csv" for s in broken)

    batch = FileSource(tmp_path).fetch(symbols, None)
    assert batch.errors.keys() == broken.keys()
    for symbol, (_, message) in broken.items():
        assert batch.errors[symbol].startswith(message)
    expected = written[~written["symbol"].isin(list(broken))].reset_index(drop=True)
    pd.testing.assert_frame_equal(batch.candles[list(expected.columns)], expected)  # exact floats
    assert batch.as_of == 1709908260 + 60


def test_rows_come_in_file_name_order_across_both_readers(tmp_path):
    pd.DataFrame({"symbol": ["AAPL"], "ts": pd.to_datetime(["2024-03-08 14:30"]).tz_localize("UTC"),
                  "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [7.0]}
                 ).to_parquet(tmp_path / "AAPL_1.parquet")
    write_csv(tmp_path, "AAPL_2.csv", ["AAPL,2024-03-08T14:31:00Z,10,11,9,10.5,100"])
    (tmp_path / "AAPL_3.csv").write_text("ts,symbol,open,high,low,close,volume\n"  # another header
                                         "2024-03-08T14:32:00Z,AAPL,10,11,9,10.5,100\n")
    write_csv(tmp_path, "MSFT_0.csv", ["MSFT,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    batch = FileSource(tmp_path).fetch(["MSFT", "AAPL"], None)
    assert batch.candles[["symbol", "bar_start"]].values.tolist() == [
        ["MSFT", 1709908200], ["AAPL", 1709908200], ["AAPL", 1709908260], ["AAPL", 1709908320]]


def test_symbols_without_a_file_since_the_mark_have_nothing_new(tmp_path):
    write_csv(tmp_path, "AAPL_1430.csv", ["AAPL,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    write_csv(tmp_path, "MSFT_1430.csv", ["MSFT,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    mark = (tmp_path / "MSFT_1430.csv").stat().st_mtime_ns + 1
    write_csv(tmp_path, "AAPL_1431.csv", ["AAPL,2024-03-08T14:31:00Z,10,11,9,10.5,100"])
    os.utime(tmp_path / "AAPL_1431.csv", ns=(mark, mark))
    batch = FileSource(tmp_path, landed_since_ns=mark).fetch(["AAPL", "MSFT", "KO"], None)
    assert batch.errors == {} and batch.unchanged == ["MSFT", "KO"]
    assert batch.candles[["symbol", "bar_start"]].values.tolist() == [["AAPL", 1709908260]]


def test_daily_bars_stamped_by_date_alone_or_at_midnight_utc_are_those_sessions(tmp_path):
    """Daily data as people download it: ``2013-03-01`` (yfinance, Stooq CSVs) and a bar at
    midnight UTC (many vendors' daily bars, Parquet exports) both mean the session of that date,
    stamped with its open (2013-03-01 and 2013-03-04: 14:30 UTC, EST)."""
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2013-03-01,10,11,9,10.5,1000",
                                     "AAPL,2013-03-04,10,11,9,10.5,1000"])
    pd.DataFrame({"symbol": ["MSFT"] * 2, "ts": pd.to_datetime(["2013-03-01", "2013-03-04"]).tz_localize("UTC"),
                  "open": [1.0] * 2, "high": [2.0] * 2, "low": [0.5] * 2, "close": [1.5] * 2,
                  "volume": [7.0] * 2}).to_parquet(tmp_path / "MSFT.parquet")
    batch = FileSource(tmp_path, base_interval="1d").fetch(["AAPL", "MSFT"], None)
    assert batch.errors == {}
    opens = [1362148200, 1362407400]  # 2013-03-01 and 2013-03-04 14:30 UTC
    assert batch.candles[["symbol", "bar_start"]].values.tolist() == [
        ["AAPL", opens[0]], ["AAPL", opens[1]], ["MSFT", opens[0]], ["MSFT", opens[1]]]


def test_a_date_alone_that_is_no_session_is_named(tmp_path):
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2013-03-02,10,11,9,10.5,1000"])
    batch = FileSource(tmp_path, base_interval="1d").fetch(["AAPL"], None)
    assert batch.errors == {"AAPL": "AAPL: 2013-03-02 is not a trading session"}


def test_a_date_alone_in_minute_data_is_refused(tmp_path):
    write_csv(tmp_path, "AAPL.csv", ["AAPL,2013-03-01,10,11,9,10.5,1000"])
    write_csv(tmp_path, "MSFT.csv", ["MSFT,2024-03-08T14:30:00Z,10,11,9,10.5,100"])
    batch = FileSource(tmp_path).fetch(["AAPL", "MSFT"], None)
    assert batch.errors == {"AAPL": "AAPL.csv: ts '2013-03-01' is a date without a time; only daily "
                                    "data (base interval 1d) is stamped by date"}
    assert set(batch.candles["symbol"]) == {"MSFT"}
