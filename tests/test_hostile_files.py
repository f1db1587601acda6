"""Hostile landed files: names with a newline, symlinks out of the landing folder, Parquet columns
of the wrong type, missing time stamps, CSV lines with the wrong number of fields. Each fails only
its own symbol, with a message naming the file; the others are ingested."""

import dagster as dg
import pandas as pd
import pytest

from candleflow.defs.market_data.landing import landing_folder_sensor
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.stages import PipelineContext, ingest_candles
from candleflow.resources import LandingFolderCandles
from candleflow.sources.files import FileSource
from candleflow.sources.landed import landed_files

CSV_HEADER = "symbol,ts,open,high,low,close,volume\n"
OUTSIDE = "links to a file outside the landing folder; not read"


def write_csv(folder, name, rows, header=CSV_HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(header + "".join(f"{r}\n" for r in rows))


def minute(symbol, ts="2024-03-08T14:30:00Z"):
    return f"{symbol},{ts},10,11,9,10.5,100"


def write_parquet(folder, name, symbol, **columns):
    """Three good minutes of ``symbol``, with ``columns`` replaced."""
    frame = pd.DataFrame({"symbol": [symbol] * 3,
                          "ts": pd.to_datetime(["2024-03-08 14:30", "2024-03-08 14:31",
                                                "2024-03-08 14:32"]).tz_localize("UTC"),
                          "open": [10.0] * 3, "high": [11.0] * 3, "low": [9.0] * 3,
                          "close": [10.5] * 3, "volume": [100.0] * 3})
    frame.assign(**columns).to_parquet(folder / name)


def test_a_file_name_with_a_newline_is_a_problem_not_a_symbol(tmp_path):
    write_csv(tmp_path, "NEWL\n.csv", [minute("NEWL")])
    write_csv(tmp_path, "MSFT.csv", [minute("MSFT")])
    files, problems = landed_files(tmp_path)
    assert [f.symbol for f in files] == ["MSFT"]
    assert [(p.symbol, p.message) for p in problems] == [
        (None, "NEWL\n.csv: malformed symbol 'NEWL\\n': expected 1-6 upper-case letters or digits "
               "starting with a letter, optionally with a share class after '.' or '-' (e.g. AAPL, BRK.B)")]


def test_the_landing_sensor_adds_neither_a_newline_name_nor_a_link_out(tmp_path):
    landing = tmp_path / "landing"
    write_csv(tmp_path / "elsewhere", "secret.csv", [minute("LINK")])
    write_csv(landing, "NEWL\n.csv", [minute("NEWL")])
    (landing / "LINK.csv").symlink_to(tmp_path / "elsewhere" / "secret.csv")
    write_csv(landing, "MSFT.csv", [minute("MSFT")])
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, resources={"candle_source": LandingFolderCandles(landing_dir=str(landing))})
        result = landing_folder_sensor(context)
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["MSFT"]]
        assert [r.tags["dagster/asset_partition_range_end"] for r in result.run_requests] == ["MSFT"]


def test_a_link_out_of_the_landing_folder_fails_its_symbol_unread(tmp_path):
    landing = tmp_path / "landing"
    write_csv(tmp_path / "elsewhere", "secret.csv", [minute("LINK")])
    (landing / "archive").mkdir(parents=True)
    (landing / "LINK.csv").symlink_to(tmp_path / "elsewhere" / "secret.csv")
    write_csv(landing / "archive", "KO.csv", [minute("KO")])
    (landing / "KO.csv").symlink_to(landing / "archive" / "KO.csv")  # inside the folder: read
    write_csv(landing, "MSFT.csv", [minute("MSFT")])
    files, problems = landed_files(landing)
    assert [f.symbol for f in files] == ["KO", "MSFT"]
    assert [(p.symbol, p.message) for p in problems] == [("LINK", f"LINK.csv: {OUTSIDE}")]
    batch = FileSource(landing).fetch(["LINK", "KO", "MSFT"], None)
    assert batch.errors == {"LINK": f"LINK.csv: {OUTSIDE}"}
    assert batch.candles["symbol"].tolist() == ["KO", "MSFT"]


def test_a_link_out_fails_its_symbol_in_a_sensor_run_too(tmp_path):
    """With ``landed_since_ns`` a symbol without a new file has nothing new; one whose new file is
    refused is not in that case: it fails, with the refusal."""
    write_csv(tmp_path / "elsewhere", "secret.csv", [minute("LINK")])
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "LINK_1430.csv").symlink_to(tmp_path / "elsewhere" / "secret.csv")
    write_csv(tmp_path / "landing", "LINK_1429.csv", [minute("LINK", "2024-03-08T14:29:00Z")])
    batch = FileSource(tmp_path / "landing", landed_since_ns=1).fetch(["LINK", "KO"], None)
    assert batch.errors == {"LINK": f"LINK_1430.csv: {OUTSIDE}"}
    assert batch.unchanged == ["KO"] and batch.candles.empty


@pytest.mark.parametrize(("column", "value", "message"), [
    ("open", [True, False, True], "AAA.parquet: column open is boolean, not a number"),
    ("close", ["10.5", "10.5", "10.5"], "AAA.parquet: column close is text, not a number"),
    ("volume", [pd.Timestamp("2024-03-08")] * 3, "AAA.parquet: column volume is a time stamp, not a number"),
    ("ts", [pd.Timestamp("2024-03-08 14:30", tz="UTC"), pd.Timestamp("2024-03-08 14:31", tz="UTC"), pd.NaT],
     "AAA.parquet: ts is missing in row 3"),
])
def test_a_parquet_column_of_the_wrong_type_fails_its_symbol(tmp_path, column, value, message):
    write_parquet(tmp_path, "AAA.parquet", "AAA", **{column: value})
    write_parquet(tmp_path, "MSFT.parquet", "MSFT")
    batch = FileSource(tmp_path).fetch(["AAA", "MSFT"], None)
    assert batch.errors == {"AAA": message}
    assert batch.candles["symbol"].tolist() == ["MSFT"] * 3


@pytest.mark.parametrize(("header", "lines", "message"), [
    # the documented header: the batch path hands the file to the per-file reader
    (CSV_HEADER, [minute("AAA") + ",7"], "AAA.csv: line 2 has 8 fields, the header has 7"),
    (CSV_HEADER, [minute("AAA"), "AAA,2024-03-08T14:31:00Z,10,11,9,10.5"],
     "AAA.csv: line 3 has 6 fields, the header has 7"),
    # another column order: read by the per-file reader only
    ("ts,symbol,open,high,low,close,volume\n", ["2024-03-08T14:30:00Z,AAA,10,11,9,10.5,100,7"],
     "AAA.csv: line 2 has 8 fields, the header has 7"),
    (CSV_HEADER, [minute("AAA"), "AAA,,10,11,9,10.5,100"], "AAA.csv: ts is missing in row 2"),
    (CSV_HEADER, ["AAA,2024-03-08T14:30:00Z,True,11,9,10.5,100"], "AAA.csv: open 'True' is not a number"),
])
def test_a_csv_line_with_the_wrong_fields_fails_its_symbol(tmp_path, header, lines, message):
    write_csv(tmp_path, "AAA.csv", lines, header)
    write_csv(tmp_path, "MSFT.csv", [minute("MSFT")])
    batch = FileSource(tmp_path).fetch(["AAA", "MSFT"], None)
    assert batch.errors == {"AAA": message}
    assert batch.candles["symbol"].tolist() == ["MSFT"]


def test_hostile_files_leave_the_store_without_their_symbols(tmp_path, store):
    """One ingest over every kind of hostile file: only the good symbols' rows are stored."""
    landing = tmp_path / "landing"
    write_csv(tmp_path / "elsewhere", "secret.csv", [minute("LINK")])
    write_csv(landing, "NEWL\n.csv", [minute("NEWL")])
    (landing / "LINK.csv").symlink_to(tmp_path / "elsewhere" / "secret.csv")
    write_parquet(landing, "BOOL.parquet", "BOOL", open=[True, True, True])
    write_parquet(landing, "NAT.parquet", "NAT", ts=pd.to_datetime([None] * 3).tz_localize("UTC"))
    write_csv(landing, "EXTRA.csv", [minute("EXTRA") + ",1"])
    write_csv(landing, "GOOD.csv", [minute("GOOD"), minute("GOOD", "2024-03-08T14:31:00Z")])
    write_parquet(landing, "PQ.parquet", "PQ")
    calendar = ExchangeSessions()
    ctx = PipelineContext(store, FileSource(landing), calendar, DEFAULT_INDICATORS, [])
    symbols = ["BOOL", "EXTRA", "GOOD", "LINK", "NAT", "NEWL", "PQ"]
    result = ingest_candles(ctx, symbols, None)
    assert result.failed == {
        "BOOL": "BOOL.parquet: column open is boolean, not a number",
        "EXTRA": "EXTRA.csv: line 2 has 8 fields, the header has 7",
        "LINK": f"LINK.csv: {OUTSIDE}",
        "NAT": "NAT.parquet: ts is missing in row 1",
        "NEWL": f"no landed file for NEWL in {landing}"}
    assert result.succeeded == ["GOOD", "PQ"]
    stored = store.read_candles(symbols, "1m")
    assert stored.groupby("symbol").size().to_dict() == {"GOOD": 2, "PQ": 3}


def test_a_daily_bar_before_the_calendar_fails_only_its_symbol(tmp_path):
    """A 1d file reaching before the calendar's first session names the setting; others are read."""
    write_csv(tmp_path, "OLD.csv", ["OLD,1989-12-29T16:00:00-05:00,10,11,9,10.5,100",
                                    "OLD,2024-03-08T16:00:00-05:00,10,11,9,10.5,100"])
    write_csv(tmp_path, "NEW.csv", ["NEW,2024-03-08T16:00:00-05:00,10,11,9,10.5,100"])
    batch = FileSource(tmp_path, base_interval="1d").fetch(["NEW", "OLD"], None)
    first, last = ExchangeSessions().first_session, ExchangeSessions().last_session
    assert batch.errors == {"OLD": f"OLD: 1989-12-29 is outside the XNYS calendar range "
                                   f"{first}..{last} (setting calendar_start)"}
    assert batch.candles["symbol"].tolist() == ["NEW"]


def test_a_window_keeps_the_extended_hours_minutes_of_its_sessions(tmp_path):
    """An explicit window hands pre-market and after-hours minutes on (stored, not derived)."""
    write_csv(tmp_path, "AAA.csv", [minute("AAA", "2024-03-08T09:00:00Z"),  # 04:00 New York
                                    minute("AAA", "2024-03-08T14:30:00Z"),
                                    minute("AAA", "2024-03-08T21:00:00Z"),  # 16:00 print
                                    minute("AAA", "2024-03-09T00:59:00Z")])  # 19:59
    sessions = ExchangeSessions().sessions(pd.Timestamp("2024-03-08").date(), pd.Timestamp("2024-03-08").date())
    batch = FileSource(tmp_path).fetch(["AAA"], sessions)
    assert pd.to_datetime(batch.candles["bar_start"], unit="s").dt.strftime("%H:%M").tolist() == [
        "09:00", "14:30", "21:00", "00:59"]
