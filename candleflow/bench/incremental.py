"""Workload "incremental-minute": one new minute for N symbols whose session so far is processed.

Untimed preparation (Postgres store and Dagster instance, databases ``candleflow_bench_incremental_*``):
the universe, ``history`` sessions of daily bars, and the session's minutes up to 10:06 New York
stored and taken through the later stages. Timed, per repetition, for the next minute (10:07,
10:08, ...) landed as one file per symbol:

- ``stages``: the stages called directly (``run_stages``, the processing a run does);
- ``job_execute``: ``dagster job execute`` over the arrived range, from launch to exit (signals
  stored), with the seconds of each stage;
- ``sensor``: with ``dagster-daemon run`` running and the landing sensor started (its 30 s
  interval), from the minute's files landed to the run finished (signals stored), split into the
  sensor's latency (landed -> run created: polling plus evaluation), the launch (created -> started)
  and the run; and to the run's ``scan_signals`` line in the readiness outbox.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from candleflow.dagster_steps.partitions import partition_range_tags
from candleflow.bench.universe_day import bench_symbols, median_figures, prepare, run_figures
from candleflow.environment import console_script
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.scan_config import load_scans
from candleflow.resources import LandingFolderCandles
from candleflow.pipeline.stages import STAGES, PipelineContext, run_stages
from candleflow.pipeline.window import window_of_bars
from candleflow.defs.market_data.landing import LandingMark, covering_range, minute_run_config
from candleflow.sources.files import FileSource
from candleflow.sources.landed import landed_files
from candleflow.sources.replay import land_minute, session_minutes
from candleflow.store import CandleStore

PREPARED_MINUTES = 37  # 09:30 .. 10:06
#: After the daemon starts: the sensors' first ticks, including the readiness sensor's backlog.
DAEMON_WARM_UP_S = 60


def process_earlier_minutes(store: CandleStore, calendar: ExchangeSessions, earlier) -> None:
    """The session so far stored and taken through the later stages (untimed preparation)."""
    store.write_candles(earlier, "1m")
    as_of = int(earlier["bar_start"].max()) + 60
    ctx = PipelineContext(store, FileSource("."), calendar, DEFAULT_INDICATORS, load_scans(None), as_of)
    window = window_of_bars(calendar, int(earlier["bar_start"].min()), as_of - 60)
    run_stages(ctx, STAGES[1:], earlier["symbol"].unique().tolist(), window)


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
    command = [console_script("dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
               "-c", str(config_file), "--tags", json.dumps(partition_range_tags(symbols))]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dagster job execute exited {done.returncode}:\n{done.stdout[-3000:]}")
    return wall


@contextmanager
def landing_daemon(env: dict[str, str], landing: Path) -> Iterator[None]:
    """``dagster-daemon run`` with the landing sensor started, its cursor past every file landed
    so far; sensors' first ticks (the readiness sensor reads the backlog) are waited out."""
    cursor = LandingMark().advanced(landed_files(landing)[0]).to_cursor()
    location = ["-m", "candleflow.definitions"]
    for command in (["sensor", "start", "landing_folder_sensor"],
                    ["sensor", "cursor", "landing_folder_sensor", "--set", cursor]):
        subprocess.run([console_script("dagster"), *command, *location], env=env, check=True, capture_output=True)
    with open(Path(env["CANDLEFLOW_HOME"]) / "daemon.log", "w") as log:
        daemon = subprocess.Popen([console_script("dagster-daemon"), "run", *location], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(DAEMON_WARM_UP_S)
            yield
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)


def _sensor_minute(env: dict[str, str], landing: Path, minute) -> dict:
    """Land a minute and follow it: the run the sensor launches, and the readiness outbox line."""
    from dagster import DagsterInstance

    outbox = Path(env["CANDLEFLOW_HOME"]) / "outbox" / "readiness.jsonl"
    land_minute(landing, minute)
    landed_at = time.time()
    with DagsterInstance.get() as instance:
        record = _wait(lambda: _finished_run_after(instance, landed_at))
    ready_at = _wait(lambda: _readiness_time(outbox, record.dagster_run.run_id))
    created, started, ended = record.create_timestamp.timestamp(), record.start_time, record.end_time
    return {"arrival_to_signals_seconds": round(ended - landed_at, 2),
            "sensor_latency_seconds": round(created - landed_at, 2),
            "launch_seconds": round(started - created, 2),
            "run_seconds": round(ended - started, 2),
            "arrival_to_readiness_line_seconds": round(ready_at - landed_at, 2),
            **run_figures(env, ended - started)}


def _finished_run_after(instance, moment: float):
    records = instance.get_run_records(limit=1)
    if records and records[0].create_timestamp.timestamp() > moment and records[0].dagster_run.is_finished:
        if records[0].dagster_run.status.value != "SUCCESS":
            raise RuntimeError(f"run {records[0].dagster_run.run_id} ended {records[0].dagster_run.status}")
        return records[0]
    return None


def _readiness_time(outbox: Path, run_id: str) -> float | None:
    if not outbox.exists():
        return None
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    if any(line["run_id"] == run_id and line["asset"] == "scan_signals" for line in lines):
        return time.time()
    return None


def _wait(found, timeout: float = 300.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value is not None:
            return value
        time.sleep(every)
    raise TimeoutError(f"nothing after {timeout:.0f} s")


def incremental_minute(symbols: int, runs: int, history: int) -> dict:
    universe = bench_symbols(symbols)
    calendar = ExchangeSessions()
    with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as tmp:
        env = prepare(Path(tmp), "postgres", universe, history, databases="candleflow_bench_incremental")
        landing = Path(tmp) / "landing"
        landing.mkdir()
        env.update(CANDLEFLOW_SOURCE="files", CANDLEFLOW_LANDING_DIR=str(landing))
        os.environ.update(env)
        store = CandleStore(env["CANDLEFLOW_STORE_URL"])
        session = calendar.last_closed_session(datetime.now(UTC))  # the one after the preload
        minutes = session_minutes(universe, session, calendar)
        opens = sorted(minutes["bar_start"].unique())
        process_earlier_minutes(store, calendar, minutes[minutes["bar_start"] < opens[PREPARED_MINUTES]])
        later = iter(opens[PREPARED_MINUTES:])
        figures = []
        for _ in range(runs):
            for mode in ("stages", "job_execute"):
                minute = minutes[minutes["bar_start"] == next(later)]
                arrived = land_minute(landing, minute)
                arrived_range = covering_range(universe, set(arrived.symbols))
                started = time.perf_counter()
                if mode == "stages":
                    stage_seconds = _stages(store, calendar, landing, arrived_range, arrived.landed_since_ns)
                    figures.append({"mode": mode, "wall_seconds": round(time.perf_counter() - started, 3),
                                    "stage_seconds": stage_seconds})
                else:
                    config = minute_run_config(LandingFolderCandles(landing_dir=str(landing)), arrived.landed_since_ns)
                    wall = _job_execute(env, arrived_range, config)
                    figures.append({"mode": mode, "wall_seconds": round(wall, 3), **run_figures(env, wall)})
        with landing_daemon(env, landing):
            for _ in range(runs):
                figures.append({"mode": "sensor", **_sensor_minute(
                    env, landing, minutes[minutes["bar_start"] == next(later)])})
        store.dispose()
    return {"workload": "incremental-minute", "symbols": symbols, "storage": "postgres",
            "history_sessions": history, "sensor_interval_seconds": 30, "runs": figures,
            "median": {mode: _mode_medians([f for f in figures if f["mode"] == mode])
                       for mode in ("stages", "job_execute", "sensor")}}


def _mode_medians(runs: list[dict]) -> dict:
    """Medians of a mode's seconds figures and of its seconds per stage."""
    seconds = [k for k, v in runs[0].items() if k.endswith("seconds") and isinstance(v, (int, float))]
    return median_figures(runs, seconds)
