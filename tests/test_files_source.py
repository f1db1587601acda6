"""The landing-folder source: documented columns, CSV and Parquet, clear errors per file."""

from datetime import date

import pandas as pd
import pytest

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.files import FileSource, landed_files

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
    assert problems and problems[0].startswith("not a symbol.csv: malformed symbol")
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
