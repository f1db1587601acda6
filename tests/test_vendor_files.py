"""Vendors' files, written here in each vendor's exact layout: Polygon day files (gzip CSV, every
ticker), Databento OHLCV-1m CSV (decimal and fixed-point prices), and exports read through a mapping
file (yfinance, Alpaca, IBKR). Values are checked against the rows written, by hand."""

import datetime
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.defs.market_data.landing import landing_folder_sensor
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.validation import validate_candles
from candleflow.definitions import defs
from candleflow.resources import LandingFolderCandles, PipelineSettings, StoreResource
from candleflow.sources.layouts import DATABENTO_OHLCV, POLYGON_DAY, LayoutError, load_layout
from candleflow.sources.tables import TableSource
from candleflow.store import CandleStore
from tests.pipeline_fixtures import prepared_store, run_pipeline, sqlite_instance

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CALENDAR = ExchangeSessions()
MARCH_8 = CALENDAR.sessions(datetime.date(2024, 3, 8), datetime.date(2024, 3, 8))
POLYGON_HEADER = "ticker,volume,open,close,high,low,window_start,transactions"


def ns(utc: str) -> int:
    return pd.Timestamp(utc, tz="UTC").value


def seconds(utc: str) -> int:
    return ns(utc) // 10**9


def polygon_day_file(folder: Path, day: str, rows: list[str], header: str = POLYGON_HEADER) -> Path:
    path = folder / f"{day}.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(header + "\n" + "".join(row + "\n" for row in rows))
    return path


def polygon_row(ticker: str, utc: str, o=10.0, c=10.5, h=11.0, low=9.5, volume=100) -> str:
    return f"{ticker},{volume},{o},{c},{h},{low},{ns(utc)},7"


def test_a_day_file_yields_only_the_runs_symbols_with_their_values(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", [
        polygon_row("A", "2024-03-08T14:30:00"), polygon_row("AAPL", "2024-03-08T09:00:00"),  # pre-market
        polygon_row("AAPL", "2024-03-08T14:30:00", 170.1, 170.4, 170.9, 169.8, 1200),
        polygon_row("AAPL", "2024-03-08T14:31:00", 170.4, 170.2, 170.5, 170.0, 900),
        polygon_row("MSFT", "2024-03-08T14:30:00", 406.0, 406.5, 407.0, 405.5, 300),
        polygon_row("ZVZZT", "2024-03-08T14:30:00")])
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["MSFT", "AAPL"], MARCH_8)
    assert batch.errors == {}
    got = batch.candles[["symbol", "bar_start", "open", "high", "low", "close", "volume"]]
    assert got.values.tolist() == [
        ["MSFT", seconds("2024-03-08T14:30"), 406.0, 407.0, 405.5, 406.5, 300.0],  # the run's order
        ["AAPL", seconds("2024-03-08T09:00"), 10.0, 11.0, 9.5, 10.5, 100.0],
        ["AAPL", seconds("2024-03-08T14:30"), 170.1, 170.9, 169.8, 170.4, 1200.0],
        ["AAPL", seconds("2024-03-08T14:31"), 170.4, 170.5, 170.0, 170.2, 900.0]]


def test_a_day_file_without_a_column_fails_every_symbol_asked_of_it(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", ["AAPL,100,10,10.5,11,9.5,7"],
                     header="ticker,volume,open,close,high,low,transactions")
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["AAPL", "MSFT"], MARCH_8)
    assert batch.errors == {"AAPL": "2024-03-08.csv.gz: missing column(s) window_start",
                            "MSFT": "2024-03-08.csv.gz: missing column(s) window_start"}
    assert batch.candles.empty


def test_a_day_file_that_is_not_gzip_is_named(tmp_path):
    (tmp_path / "2024-03-08.csv.gz").write_bytes(b"\x1f\x8b\x08garbage")
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["AAPL"], MARCH_8)
    assert batch.errors["AAPL"].startswith("2024-03-08.csv.gz: not a readable gzip CSV file (")


def test_row_problems_fail_only_their_symbol(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", [
        polygon_row("AAPL", "2024-03-08T14:30:00"),
        f"AAPL,100,10,10.5,11,9.5,{ns('2024-03-08T14:31:00') + 500_000_000},7",  # half a second past
        polygon_row("KO", "2024-03-08T14:30:00"),
        "MSFT,100,10,abc,11,9.5,{},7".format(ns("2024-03-08T14:30:00")),
        polygon_row("TSLA", "2024-03-08T14:30:30")])
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["AAPL", "KO", "MSFT", "TSLA"], MARCH_8)
    assert batch.errors == {
        "AAPL": "AAPL: 2024-03-08.csv.gz line 3: window_start '1709908260500000000' is not on a minute",
        "MSFT": "MSFT: 2024-03-08.csv.gz line 5: close 'abc' is not a number",
        "TSLA": "TSLA: 2024-03-08.csv.gz line 6: window_start '1709908230000000000' is not on a minute"}
    assert batch.candles["symbol"].tolist() == ["KO"]


def test_a_window_day_without_its_day_file_fails_the_run_symbols(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", [polygon_row("AAPL", "2024-03-08T14:30:00")])
    polygon_day_file(tmp_path, "2024-03-12", [polygon_row("AAPL", "2024-03-12T14:30:00")])
    window = CALENDAR.sessions(datetime.date(2024, 3, 8), datetime.date(2024, 3, 11))
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["AAPL"], window)
    assert batch.errors == {"AAPL": f"AAPL: no day file for 2024-03-11 in {tmp_path}"}


def test_a_symbol_in_no_file_fails_unless_the_run_reads_only_new_files(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", [polygon_row("AAPL", "2024-03-08T14:30:00")])
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR).fetch(["AAPL", "IBM"], MARCH_8)
    assert batch.errors == {"IBM": f"IBM: no rows in the polygon-day files of {tmp_path} (2024-03-08.csv.gz)"}
    landed = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR, landed_since_ns=1).fetch(["AAPL", "IBM"], None)
    assert (landed.errors, landed.unchanged) == ({}, ["IBM"])


def test_a_bar_after_the_extended_session_fails_only_its_symbol(tmp_path):
    """20:00 New York is the end of XNYS's extended hours: a print there is outside every session."""
    polygon_day_file(tmp_path, "2024-03-08", [
        polygon_row("AAPL", "2024-03-08T14:30:00"), polygon_row("LATE", "2024-03-09T01:00:00")])
    batch = TableSource(tmp_path, POLYGON_DAY, calendar=CALENDAR, landed_since_ns=1).fetch(["AAPL", "LATE"], None)
    clean, rejections = validate_candles(batch.candles, CALENDAR)
    assert clean["symbol"].tolist() == ["AAPL"]
    assert [str(r) for r in rejections] == [
        "LATE at 2024-03-09T01:00:00Z: outside every session (bar_start=1709946000)"]


DATABENTO_HEADER = "ts_event,rtype,publisher_id,instrument_id,open,high,low,close,volume,symbol"


def databento_file(folder: Path, rows: list[str]) -> None:
    (folder / "xnas-itch-20240308.ohlcv-1m.csv").write_text(DATABENTO_HEADER + "\n" + "\n".join(rows) + "\n")


def test_databento_decimal_prices(tmp_path):
    databento_file(tmp_path, [f"{ns('2024-03-08T14:30')},33,2,15144,170.11,170.92,169.80,170.40,1200,AAPL"])
    batch = TableSource(tmp_path, DATABENTO_OHLCV, calendar=CALENDAR).fetch(["AAPL"], MARCH_8)
    assert batch.candles[["bar_start", "open", "high", "low", "close", "volume"]].values.tolist() == [
        [seconds("2024-03-08T14:30"), 170.11, 170.92, 169.80, 170.40, 1200.0]]


def test_databento_fixed_point_prices_with_and_without_their_scale(tmp_path):
    databento_file(tmp_path, [
        f"{ns('2024-03-08T14:30')},33,2,15144,170110000000,170920000000,169800000000,170400000000,1200,AAPL"])
    mapping = tmp_path / "databento-fixed.yaml"
    mapping.write_text("layout: databento-ohlcv\nprice_scale: 1.0e-9\n")
    scaled = TableSource(tmp_path, load_layout(mapping), calendar=CALENDAR).fetch(["AAPL"], MARCH_8)
    assert scaled.candles[["open", "high", "low", "close"]].values.tolist() == [[170.11, 170.92, 169.8, 170.4]]
    unscaled = TableSource(tmp_path, DATABENTO_OHLCV, calendar=CALENDAR).fetch(["AAPL"], MARCH_8)
    clean, rejections = validate_candles(unscaled.candles, CALENDAR)
    assert clean.empty
    assert [str(r) for r in rejections] == [
        "AAPL at 2024-03-08T14:30:00Z: price above 1e+07 (fixed-point prices read without their scale?) "
        "(open=170110000000.0, high=170920000000.0, low=169800000000.0, close=170400000000.0)"]


def mapped(folder: Path, mapping: str, symbols: list[str], sessions=MARCH_8):
    path = folder / "mapping.yaml"
    path.write_text(mapping)
    return TableSource(folder, load_layout(path), calendar=CALENDAR).fetch(symbols, sessions)


def test_a_yfinance_export(tmp_path):
    """yfinance's ``download(...).to_csv()``: tz-aware local stamps, a file per symbol."""
    (tmp_path / "AAPL.csv").write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-08 09:30:00-05:00,169.0,170.0,168.5,169.5,169.5,1000\n"
        "2024-03-11 09:30:00-04:00,171.0,172.0,170.5,171.5,171.5,2000\n")
    batch = mapped(tmp_path, "symbol: ''\ntime: Datetime\nopen: Open\nhigh: High\nlow: Low\nclose: Close\n"
                             "volume: Volume\n", ["AAPL"], None)
    assert batch.errors == {}
    assert batch.candles[["symbol", "bar_start", "close"]].values.tolist() == [
        ["AAPL", seconds("2024-03-08T14:30"), 169.5], ["AAPL", seconds("2024-03-11T13:30"), 171.5]]


def test_an_alpaca_parquet_export(tmp_path):
    """Alpaca bars: ``t`` RFC 3339 in UTC, ``o h l c v``; here as Parquet with the symbol column."""
    pq.write_table(pa.table({"symbol": ["AAPL", "MSFT"], "t": ["2024-03-08T14:30:00Z", "2024-03-08T14:30:00Z"],
                             "o": [1.0, 2.0], "h": [1.5, 2.5], "l": [0.5, 1.5], "c": [1.2, 2.2],
                             "v": [10, 20], "n": [1, 2], "vw": [1.1, 2.1]}), tmp_path / "bars.parquet")
    batch = mapped(tmp_path, "time: t\nopen: o\nhigh: h\nlow: l\nclose: c\nvolume: v\n", ["MSFT"])
    assert batch.candles[["symbol", "bar_start", "open", "high", "low", "close", "volume"]].values.tolist() == [
        ["MSFT", seconds("2024-03-08T14:30"), 2.0, 2.5, 1.5, 2.2, 20.0]]


def test_an_ibkr_export_in_new_york_time_across_the_dst_change(tmp_path):
    """IBKR: ``yyyymmdd hh:mm:ss`` in the exchange's zone; 2024-03-10 02:30 does not exist there."""
    (tmp_path / "IBM.csv").write_text("date,open,high,low,close,volume\n"
                                      "20240308 09:30:00,1,2,0.5,1.5,100\n20240311 09:30:00,1,2,0.5,1.5,100\n")
    (tmp_path / "KO.csv").write_text("date,open,high,low,close,volume\n20240310 02:30:00,1,2,0.5,1.5,100\n")
    batch = mapped(tmp_path, "symbol: ''\ntime: date\ntime_format: '%Y%m%d %H:%M:%S'\n"
                             "time_zone: America/New_York\n", ["IBM", "KO"], None)
    assert batch.candles["bar_start"].tolist() == [seconds("2024-03-08T14:30"), seconds("2024-03-11T13:30")]
    assert batch.errors == {"KO": "KO: KO.csv line 2: date '20240310 02:30:00' does not exist or is ambiguous "
                                  "in America/New_York (a DST change)"}


def test_naive_stamps_without_a_zone_are_refused(tmp_path):
    (tmp_path / "bars.csv").write_text("symbol,t,open,high,low,close,volume\nAAPL,2024-03-08 09:30:00,1,2,0.5,1.5,1\n")
    batch = mapped(tmp_path, "time: t\n", ["AAPL"], None)
    assert batch.errors == {"AAPL": "AAPL: bars.csv line 2: t '2024-03-08 09:30:00' has no UTC offset and the "
                                    "layout names no time_zone"}


@pytest.mark.parametrize(("mapping", "error"), [
    ("time: t\ncolour: red\n", "mapping.yaml: unknown key 'colour' (known: layout, time, open, high, low, "
                               "close, volume, symbol, time_unit, time_format, time_zone, price_scale, by_day)"),
    ("open: o\n", "mapping.yaml: time (the column of the bar start) is required without a base layout"),
    ("layout: nasdaq\n", "unknown file layout 'nasdaq' (known: polygon-day, databento-ohlcv)"),
    ("time: t\ntime_unit: days\n", "mapping.yaml: time_unit must be one of s, ms, us, ns, not 'days'"),
    ("time: t\ntime_zone: Mars/Olympus\n", "mapping.yaml: unknown time_zone 'Mars/Olympus' (an IANA name such "
                                           "as America/New_York)"),
    ("time: t\nprice_scale: -1\n", "mapping.yaml: price_scale must be a positive number"),
    ("time: t\nopen: t\n", "mapping.yaml: column 't' is mapped twice"),
    ("time: [t]\n", "mapping.yaml: time must be text (a column name or a format)"),
    ("- time\n", "mapping.yaml: expected a mapping of layout fields, got list"),
    ("time: &a t\nopen: *a\n", "mapping.yaml: line 1: YAML anchors and aliases are not allowed"),
])
def test_a_bad_mapping_file_is_named(tmp_path, mapping, error):
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping)
    with pytest.raises(LayoutError) as raised:
        load_layout(path)
    assert str(raised.value) == error


def evaluate_sensor(instance, folder, new_tickers):
    return landing_folder_sensor(dg.build_sensor_context(instance=instance, resources={
        "candle_source": LandingFolderCandles(landing_dir=str(folder), layout="polygon-day",
                                              new_tickers=new_tickers)}))


@pytest.mark.parametrize(("new_tickers", "run_range", "added"), [
    ("ignore", ("AAPL", "MSFT"), []), ("add", ("AAPL", "ZZZ"), [["NVDA", "ZZZ"]])])
def test_a_new_day_file_launches_the_run_over_the_universe_symbols_it_holds(tmp_path, new_tickers, run_range,
                                                                              added):
    polygon_day_file(tmp_path, "2024-03-08", [polygon_row(t, "2024-03-08T14:30:00")
                                              for t in ("AAPL", "MSFT", "NVDA", "ZZZ", "ABRpD")])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL", "KO", "MSFT", "XOM"])
        result = evaluate_sensor(instance, tmp_path, new_tickers)
    [request] = result.run_requests
    assert (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"]) == run_range
    config = request.run_config["resources"]["candle_source"]["config"]
    assert (config["layout"], config["new_tickers"]) == ("polygon-day", new_tickers)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == added


def test_a_new_databento_file_launches_the_run_over_its_symbols(tmp_path):
    databento_file(tmp_path, [f"{ns('2024-03-08T14:30')},33,2,1,1,1,1,1,1,{t}" for t in ("KO", "MSFT")])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL", "KO", "MSFT", "XOM"])
        result = landing_folder_sensor(dg.build_sensor_context(instance=instance, resources={
            "candle_source": LandingFolderCandles(landing_dir=str(tmp_path), layout="databento-ohlcv")}))
    [request] = result.run_requests
    assert (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"]) == ("KO", "MSFT")


def test_a_day_file_with_no_universe_symbol_launches_nothing(tmp_path):
    polygon_day_file(tmp_path, "2024-03-08", [polygon_row("NVDA", "2024-03-08T14:30:00")])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        result = evaluate_sensor(instance, tmp_path, "ignore")
    assert result.run_requests == []
    assert result.skip_reason.skip_message == "the 1 new file(s) hold no symbol of the universe"


def run(args, env, check=True):
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=check, timeout=300)


def test_each_layout_through_dagster_job_execute(tmp_path):
    """One landing folder per layout, each run by ``dagster job execute`` over AAPL..MSFT: the
    1m bars stored are the files' rows, and the 5m bars are built from them."""
    folders = {layout: tmp_path / layout for layout in ("polygon-day", "databento-ohlcv", "mapping")}
    for folder in folders.values():
        folder.mkdir()
    minutes = [f"2024-03-08T14:{m:02d}:00" for m in range(30, 40)]
    polygon_day_file(folders["polygon-day"], "2024-03-08",
                     [polygon_row(t, m, 10 + i, 10.5 + i, 11 + i, 9.5 + i) for t in ("AAPL", "MSFT")
                      for i, m in enumerate(minutes)])
    databento_file(folders["databento-ohlcv"], [f"{ns(m)},33,2,1,{10 + i},{11 + i},{9.5 + i},{10.5 + i},100,{t}"
                                                for t in ("AAPL", "MSFT") for i, m in enumerate(minutes)])
    for t in ("AAPL", "MSFT"):
        (folders["mapping"] / f"{t}.csv").write_text("Datetime,Open,High,Low,Close,Volume\n" + "".join(
            f"{m}+00:00,{10 + i},{11 + i},{9.5 + i},{10.5 + i},100\n" for i, m in enumerate(minutes)))
    yfinance = tmp_path / "yfinance.yaml"
    yfinance.write_text("symbol: ''\ntime: Datetime\nopen: Open\nhigh: High\nlow: Low\nclose: Close\nvolume: Volume\n")
    layouts = {"polygon-day": "polygon-day", "databento-ohlcv": "databento-ohlcv", "mapping": str(yfinance)}
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"ops": {"market_data_pipeline": {"config": {"start": "2024-03-08"}}}}))
    tags = json.dumps({"dagster/asset_partition_range_start": "AAPL", "dagster/asset_partition_range_end": "MSFT"})
    for name, folder in folders.items():
        home = tmp_path / f"home-{name}"
        (home / "dagster").mkdir(parents=True)
        shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster" / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "CANDLEFLOW_HOME": str(home),
               "CANDLEFLOW_SOURCE": "files", "CANDLEFLOW_LANDING_DIR": str(folder),
               "CANDLEFLOW_FILE_LAYOUT": layouts[name]}
        run([sys.executable, "-m", "candleflow.cli", "universe", "add", "AAPL", "MSFT"], env)
        executed = run([str(BIN / "dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
                        "-c", str(config), "--tags", tags], env)
        assert "RUN_SUCCESS" in executed.stderr + executed.stdout, name
        store = CandleStore(f"sqlite:///{home / 'candleflow.db'}")
        stored = store.read_candles(["AAPL", "MSFT"], "1m")
        assert stored.groupby("symbol").size().to_dict() == {"AAPL": 10, "MSFT": 10}, name
        assert stored["close"].tolist()[:3] == [10.5, 11.5, 12.5], name
        five = store.read_candles(["AAPL"], "5m")
        assert five[["open", "high", "low", "close", "volume"]].values.tolist() == [
            [10.0, 15.0, 9.5, 14.5, 500.0], [15.0, 20.0, 14.5, 19.5, 500.0]], name


def test_the_run_a_new_day_file_launches_stores_its_universe_symbols(tmp_path):
    """The landing sensor's run request for a new day file, executed: AAPL and MSFT get the day
    file's minutes (pre-market included, as 1m bars only), KO (in the range, not in the file) has
    nothing new, NVDA (not in the universe) is ignored."""
    landing = tmp_path / "landing"
    landing.mkdir()
    minutes = ["2024-03-08T13:00:00"] + [f"2024-03-08T14:{m:02d}:00" for m in range(30, 40)]
    polygon_day_file(landing, "2024-03-08", [polygon_row(t, m) for t in ("AAPL", "MSFT", "NVDA") for m in minutes])
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL", "KO", "MSFT"])
        [request] = evaluate_sensor(instance, landing, "ignore").run_requests
        source_config = request.run_config["resources"]["candle_source"]["config"]
        result = defs.resolve_job_def("market_data").execute_in_process(
            instance=instance, tags=request.tags,
            resources={"store": StoreResource(url=store_url), "settings": PipelineSettings(),
                       "candle_source": LandingFolderCandles(**source_config)})
    assert result.success
    store = CandleStore(store_url)
    assert store.read_candles(["AAPL", "KO", "MSFT", "NVDA"], "1m").groupby("symbol").size().to_dict() == {
        "AAPL": 11, "MSFT": 11}
    five = store.read_candles(["AAPL", "MSFT"], "5m")
    assert five.groupby("symbol")["bar_start"].apply(list).to_dict() == {
        s: [seconds("2024-03-08T14:30"), seconds("2024-03-08T14:35")] for s in ("AAPL", "MSFT")}


def test_extended_hours_minutes_across_the_dst_change_are_stored_marked(tmp_path, store_url):
    """New York's extended hours are 04:00-20:00 local: 09:00-01:00 UTC before the 2024-03-10
    change, 08:00-00:00 after. The same UTC minutes are pre-market on one side and outside every
    session on the other; the bars outside fail their symbol only, the others are stored marked
    with their part of the session, and only the regular minutes make derived bars."""
    landing = tmp_path / "landing"
    landing.mkdir()
    polygon_day_file(landing, "2024-03-08", [
        polygon_row("AAPL", "2024-03-08T09:00:00"),  # 04:00 EST: pre
        polygon_row("AAPL", "2024-03-08T14:30:00"),  # 09:30 EST: regular
        polygon_row("AAPL", "2024-03-08T21:30:00"),  # 16:30 EST: post
        polygon_row("EARLY", "2024-03-08T08:30:00")])  # 03:30 EST: outside every session
    polygon_day_file(landing, "2024-03-11", [
        polygon_row("AAPL", "2024-03-11T08:30:00"),  # 04:30 EDT: pre
        polygon_row("AAPL", "2024-03-11T13:30:00"),  # 09:30 EDT: regular
        polygon_row("AAPL", "2024-03-11T23:59:00"),  # 19:59 EDT: post
        polygon_row("EARLY", "2024-03-11T13:30:00")])
    prepared_store(store_url, ["AAPL", "EARLY"], history=30)
    source = LandingFolderCandles(landing_dir=str(landing), layout="polygon-day")
    with sqlite_instance(tmp_path) as instance:
        first = run_pipeline(instance, store_url, ["AAPL", "EARLY"], source, session=datetime.date(2024, 3, 8))
        second = run_pipeline(instance, store_url, ["AAPL", "EARLY"], source, session=datetime.date(2024, 3, 11))
    assert first.success and second.success
    store = CandleStore(store_url)
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT symbol, bar_start, part FROM candles WHERE interval = '1m' "
                                   "ORDER BY symbol, bar_start")).all()
    assert [tuple(row) for row in stored] == [
        ("AAPL", seconds("2024-03-08T09:00"), "pre"), ("AAPL", seconds("2024-03-08T14:30"), "regular"),
        ("AAPL", seconds("2024-03-08T21:30"), "post"), ("AAPL", seconds("2024-03-11T08:30"), "pre"),
        ("AAPL", seconds("2024-03-11T13:30"), "regular"), ("AAPL", seconds("2024-03-11T23:59"), "post"),
        ("EARLY", seconds("2024-03-11T13:30"), "regular")]
    assert store.read_candles(["AAPL"], "5m")["bar_start"].tolist() == [
        seconds("2024-03-08T14:30"), seconds("2024-03-11T13:30")]
    check = next(e for e in first.get_asset_check_evaluations() if e.check_name == "valid_candles")
    assert check.metadata["failures"].value == {
        "EARLY": "EARLY at 2024-03-08T08:30:00Z in 2024-03-08.csv.gz: outside every session (bar_start=1709886600)"}


def test_with_extended_hours_bars_intraday_bars_start_at_the_extended_open(tmp_path):
    """CANDLEFLOW_EXTENDED_HOURS_BARS: 5m and 1h bars are made of 04:00-20:00 New York, aligned to
    04:00 on both sides of the DST change; the daily bar is still the regular session alone."""
    landing = tmp_path / "landing"
    landing.mkdir()
    day_rows = {"2024-03-08": ["2024-03-08T09:00:00", "2024-03-08T09:07:00", "2024-03-08T14:30:00",
                               "2024-03-08T21:30:00"],  # 04:00, 04:07, 09:30, 16:30 EST
                "2024-03-11": ["2024-03-11T08:00:00", "2024-03-11T13:30:00", "2024-03-11T23:59:00"]}
    for day, minutes in day_rows.items():  # 04:00, 09:30, 19:59 EDT
        polygon_day_file(landing, day, [polygon_row("AAPL", m, volume=100 * (i + 1)) for i, m in enumerate(minutes)])
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    prepared_store(store_url, ["AAPL"], history=30)
    source = LandingFolderCandles(landing_dir=str(landing), layout="polygon-day")
    settings = PipelineSettings(extended_hours_bars=True)
    with sqlite_instance(tmp_path) as instance:
        for day in (datetime.date(2024, 3, 8), datetime.date(2024, 3, 11)):
            result = run_pipeline(instance, store_url, ["AAPL"], source, session=day, settings=settings)
            assert result.success
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert all(checks.values()), checks
    store = CandleStore(store_url)
    five = store.read_candles(["AAPL"], "5m")
    assert five[["bar_start", "minutes", "volume"]].values.tolist() == [
        [seconds("2024-03-08T09:00"), 1, 100.0], [seconds("2024-03-08T09:05"), 1, 200.0],
        [seconds("2024-03-08T14:30"), 1, 300.0], [seconds("2024-03-08T21:30"), 1, 400.0],
        [seconds("2024-03-11T08:00"), 1, 100.0], [seconds("2024-03-11T13:30"), 1, 200.0],
        [seconds("2024-03-11T23:55"), 1, 300.0]]
    hours = store.read_candles(["AAPL"], "1h")["bar_start"].tolist()
    assert hours == [seconds("2024-03-08T09:00"), seconds("2024-03-08T14:00"), seconds("2024-03-08T21:00"),
                     seconds("2024-03-11T08:00"), seconds("2024-03-11T13:00"), seconds("2024-03-11T23:00")]
    daily = store.read_candles(["AAPL"], "1d", seconds("2024-03-08T00:00"))
    assert daily[["bar_start", "minutes", "volume"]].values.tolist() == [
        [seconds("2024-03-08T14:30"), 1, 300.0], [seconds("2024-03-11T13:30"), 1, 200.0]]
