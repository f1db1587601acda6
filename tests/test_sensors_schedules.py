"""The landing sensor and the daily schedule, evaluated with Dagster's test contexts."""

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from candleflow.assets.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.resources import LandingFolderCandles, PipelineSettings, SyntheticCandles
from candleflow.sensors.daily_schedule import daily_after_close
from candleflow.sensors.landing import landing_folder_sensor

NEW_YORK = ZoneInfo("America/New_York")
HEADER = "symbol,ts,open,high,low,close,volume\n"


def land(folder, name, symbol, mtime_ns):
    path = folder / name
    path.write_text(HEADER + f"{symbol},2024-03-08T14:30:00Z,10,11,9,10.5,100\n")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def evaluate(instance, folder, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"candle_source": LandingFolderCandles(landing_dir=str(folder))})
    return landing_folder_sensor(context)


def test_landing_sensor_runs_arrived_symbols_once(tmp_path):
    land(tmp_path, "AAPL.csv", "AAPL", 1_000_000_000)
    land(tmp_path, "MSFT_2024-03-08.csv", "MSFT", 2_000_000_000)
    (tmp_path / "bad name.csv").write_text(HEADER)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        first = evaluate(instance, tmp_path)
        assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
            ("AAPL", "AAPL@1000000000"), ("MSFT", "MSFT@2000000000")]
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["MSFT"]]
        assert json.loads(first.cursor) == {"AAPL.csv": 1_000_000_000, "MSFT_2024-03-08.csv": 2_000_000_000}

        again = evaluate(instance, tmp_path, first.cursor)
        assert again.run_requests == [] and again.skip_reason.skip_message == "no new or changed files"

        land(tmp_path, "AAPL.csv", "AAPL", 3_000_000_000)
        changed = evaluate(instance, tmp_path, first.cursor)
        assert [r.run_key for r in changed.run_requests] == ["AAPL@3000000000"]
        assert changed.dynamic_partitions_requests == []


def test_landing_sensor_skips_synthetic_source():
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"candle_source": SyntheticCandles()})
        result = landing_folder_sensor(context)
        assert "not a landing folder" in result.skip_message


def schedule_at(instance, when: datetime):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        resources={"settings": PipelineSettings()})
    return daily_after_close(context)


def test_schedule_runs_whole_universe_after_close():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL", "KO", "MSFT"])
        request = schedule_at(instance, datetime(2024, 3, 8, 16, 30, tzinfo=NEW_YORK))
        assert request.run_key == "session-2024-03-08"
        assert request.tags["dagster/asset_partition_range_start"] == "AAPL"
        assert request.tags["dagster/asset_partition_range_end"] == "MSFT"
        assert request.run_config == {"ops": {"market_data_pipeline": {
            "config": {"start": "2024-03-08", "end": "2024-03-08"}}}}


def test_schedule_skips_holidays_and_empty_universe():
    with dg.instance_for_test() as instance:
        skip = schedule_at(instance, datetime(2024, 3, 8, 16, 30, tzinfo=NEW_YORK))
        assert "universe is empty" in skip.skip_message
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        holiday = schedule_at(instance, datetime(2024, 12, 25, 16, 30, tzinfo=NEW_YORK))
        assert holiday.skip_message == "2024-12-25 is not a trading session"
