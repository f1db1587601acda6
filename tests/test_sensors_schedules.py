"""The landing sensor and the daily schedule, evaluated with Dagster's test contexts."""

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.defs.market_data.landing import landing_folder_sensor
from candleflow.defs.market_data.schedules import daily_after_close
from candleflow.resources import LandingFolderCandles, PipelineSettings, SyntheticCandles

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


def range_of(request) -> tuple[str, str]:
    return (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"])


def since_of(request) -> int:
    return request.run_config["resources"]["candle_source"]["config"]["landed_since_ns"]


def test_landing_sensor_runs_arrived_symbols_once(tmp_path):
    land(tmp_path, "AAPL.csv", "AAPL", 1_000_000_000)
    land(tmp_path, "MSFT_2024-03-08.csv", "MSFT", 2_000_000_000)
    (tmp_path / "bad name.csv").write_text(HEADER)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL", "KO"])
        first = evaluate(instance, tmp_path)
        # one run over AAPL..MSFT (the new MSFT goes last); KO, in between, has nothing new
        assert [(range_of(r), since_of(r), r.run_key) for r in first.run_requests] == [
            (("AAPL", "MSFT"), 1_000_000_000, "AAPL...MSFT@1000000000")]
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["MSFT"]]
        assert json.loads(first.cursor) == {"mtime_ns": 2_000_000_000, "names": ["MSFT_2024-03-08.csv"]}
        assert evaluate(instance, tmp_path, first.cursor).run_requests == evaluate(
            instance, tmp_path, first.cursor).run_requests  # a re-evaluation asks for the same runs

        again = evaluate(instance, tmp_path, first.cursor)
        assert again.run_requests == [] and again.skip_reason.skip_message == "no new or changed files"

        land(tmp_path, "AAPL.csv", "AAPL", 3_000_000_000)
        changed = evaluate(instance, tmp_path, first.cursor)
        assert [r.run_key for r in changed.run_requests] == ["AAPL...AAPL@3000000000"]
        assert changed.dynamic_partitions_requests == []


def test_landing_sensor_one_run_over_the_arrived_range(tmp_path):
    universe = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
    for symbol, mtime in [("AAA", 4), ("BBB", 5), ("DDD", 6), ("EEE", 6)]:
        land(tmp_path, f"{symbol}_20240308T1507.csv", symbol, mtime * 10**9)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, universe)
        previous = json.dumps({"mtime_ns": 4 * 10**9, "names": ["AAA_20240308T1507.csv"]})
        result = evaluate(instance, tmp_path, previous)
        assert [(range_of(r), since_of(r)) for r in result.run_requests] == [(("BBB", "EEE"), 5 * 10**9)]
        # files sharing the mark's timestamp: the ones not yet seen are still new
        land(tmp_path, "CCC_20240308T1507.csv", "CCC", 6 * 10**9)
        late = evaluate(instance, tmp_path, result.cursor)
        assert [(range_of(r), since_of(r)) for r in late.run_requests] == [(("CCC", "CCC"), 6 * 10**9)]


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
        assert request.run_config == {"ops": {"plan_shards": {
            "config": {"start": "2024-03-08", "end": "2024-03-08"}}}}  # the universe, in shards


def test_schedule_skips_holidays_and_empty_universe():
    with dg.instance_for_test() as instance:
        skip = schedule_at(instance, datetime(2024, 3, 8, 16, 30, tzinfo=NEW_YORK))
        assert "universe is empty" in skip.skip_message
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        holiday = schedule_at(instance, datetime(2024, 12, 25, 16, 30, tzinfo=NEW_YORK))
        assert holiday.skip_message == "2024-12-25 is not a trading session"
