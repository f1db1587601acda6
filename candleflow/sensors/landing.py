"""Launch runs for the symbols whose candle files arrived in the landing folder."""

import json

import dagster as dg

from candleflow.assets.partitions import SYMBOLS_PARTITIONS_NAME, symbols_partitions
from candleflow.jobs import market_data_job
from candleflow.resources import CandleSourceResource, LandingFolderCandles
from candleflow.sources.files import landed_files


@dg.sensor(
    job=market_data_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the landing folder of the files source. New or changed files launch one "
    "run per symbol; symbols not yet in the universe are added as partitions. The cursor holds "
    "each file's modification time, so a file is processed once per change.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext, candle_source: CandleSourceResource):
    if not isinstance(candle_source, LandingFolderCandles):
        return dg.SkipReason("the candle source is not a landing folder (CANDLEFLOW_SOURCE=files)")
    files, problems = landed_files(candle_source.landing_dir)
    for problem in problems:
        context.log.warning(f"ignored landed file {problem}")
    seen = json.loads(context.cursor) if context.cursor else {}
    arrived: dict[str, int] = {}
    for landed in files:
        if seen.get(landed.path.name) != landed.mtime_ns:
            arrived[landed.symbol] = max(arrived.get(landed.symbol, 0), landed.mtime_ns)
    cursor = json.dumps({f.path.name: f.mtime_ns for f in files}, sort_keys=True)
    if not arrived:
        return dg.SensorResult(skip_reason="no new or changed files", cursor=cursor)
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
    new_symbols = sorted(s for s in arrived if s not in known)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"{symbol}@{mtime}", partition_key=symbol)
                      for symbol, mtime in sorted(arrived.items())],
        dynamic_partitions_requests=[symbols_partitions.build_add_request(new_symbols)] if new_symbols else [],
        cursor=cursor,
    )
