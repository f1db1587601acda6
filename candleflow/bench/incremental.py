"""Workload "incremental-minute": one new minute for N symbols whose session so far is processed.

Untimed preparation (Postgres store and Dagster instance): the universe, ``history`` sessions of
daily bars, and the session's minutes up to 10:06 New York landed as files and processed by one
run. Timed, per repetition, for the next minute (10:07, 10:08, ...) landed as one file per symbol:
the stages called directly (``run_stages``, the processing a run does) and ``dagster job execute``
from launch to exit (signals stored), with the seconds of each stage.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from candleflow.assets.partitions import partition_range_tags
from candleflow.bench.universe_day import bench_symbols, prepare, run_figures
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.scan_config import load_scans
from candleflow.pipeline.stages import STAGES, PipelineContext, run_stages
from candleflow.sensors.landing import minute_run_config
from candleflow.sources.files import FileSource
from candleflow.sources.replay import land_minute, session_minutes
from candleflow.store import CandleStore

PREPARED_MINUTES = 37  # 09:30 .. 10:06


def _stages(store: CandleStore, calendar: ExchangeSessions, landing: Path, symbols: list[str],
            landed_since_ns: int) -> dict[str, float]:
    ctx = PipelineContext(store, FileSource(landing, landed_since_ns=landed_since_ns), calendar,
                          DEFAULT_INDICATORS, load_scans(None))
    results = run_stages(ctx, STAGES, symbols, None)
    failed = {r.stage: len(r.failed) for r in results if r.failed}
    if failed:
        raise RuntimeError(f"symbols failed per stage: {failed}")
    return {r.stage: round(r.seconds, 3) for r in results}


def _job_execute(env: dict[str, str], symbols: list[str], config: dict) -> float:
    config_file = Path(env["CANDLEFLOW_HOME"]) / "minute.json"
    config_file.write_text(json.dumps(config))
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m",
               "candleflow.definitions", "-j", "market_data", "-c", str(config_file),
               "--tags", json.dumps(partition_range_tags(symbols))]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dagster job execute exited {done.returncode}:\n{done.stdout[-3000:]}")
    return wall


def incremental_minute(symbols: int, runs: int, history: int) -> dict:
    universe = bench_symbols(symbols)
    calendar = ExchangeSessions()
    with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as tmp:
        env = prepare(Path(tmp), "postgres", universe, history)
        os.environ.update(env)
        landing = Path(tmp) / "landing"
        landing.mkdir()
        store = CandleStore(env["CANDLEFLOW_STORE_URL"])
        session = calendar.last_closed_session(datetime.now(UTC))  # the one after the preload
        minutes = session_minutes(universe, session, calendar)
        opens = sorted(minutes["bar_start"].unique())
        earlier = minutes[minutes["bar_start"] < opens[PREPARED_MINUTES]]
        landed = [land_minute(landing, frame) for _, frame in earlier.groupby("bar_start")]
        _stages(store, calendar, landing, universe, landed[0].landed_since_ns)
        figures = []
        for index in range(runs):
            for mode in ("stages", "job_execute"):
                minute = minutes[minutes["bar_start"] == opens[PREPARED_MINUTES + len(figures)]]
                arrived = land_minute(landing, minute)
                if mode == "stages":
                    started = time.perf_counter()
                    stage_seconds = _stages(store, calendar, landing, universe, arrived.landed_since_ns)
                    figures.append({"mode": mode, "wall_seconds": round(time.perf_counter() - started, 3),
                                    "stage_seconds": stage_seconds})
                else:
                    config = minute_run_config(landing, "1m", arrived.landed_since_ns)
                    wall = _job_execute({**env, "CANDLEFLOW_SOURCE": "files",
                                         "CANDLEFLOW_LANDING_DIR": str(landing)}, universe, config)
                    figures.append({"mode": mode, "wall_seconds": round(wall, 3),
                                    **run_figures(env, wall)})
        store.dispose()
    return {"workload": "incremental-minute", "symbols": symbols, "storage": "postgres",
            "history_sessions": history, "runs": figures, "median": _medians(figures)}


def _medians(figures: list[dict]) -> dict:
    out = {}
    for mode in ("stages", "job_execute"):
        runs = [f for f in figures if f["mode"] == mode]
        out[mode] = {"wall_seconds": statistics.median(f["wall_seconds"] for f in runs),
                     "stage_seconds": {s: statistics.median(f["stage_seconds"][s] for f in runs)
                                       for s in runs[0]["stage_seconds"]}}
    return out
