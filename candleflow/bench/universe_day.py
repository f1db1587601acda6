"""Workload "universe-day": N symbols with 260 sessions of daily history already stored, then
one session of 1m bars taken through the whole pipeline in one Dagster run, launched the way a user
launches it (``dagster job execute`` over the universe's partition range).

Preloading is not timed. Timed: wall seconds from launching the CLI to its exit (signals stored),
peak summed RSS of the CLI and every process it starts, and, from the run's event log, seconds per
stage, seconds writing tracking rows, rows written, event count, and Dagster's own share: wall
minus stages and tracking (CLI start, run creation, the step's process start, event writes).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from candleflow.dagster_steps.partitions import partition_range_tags
from candleflow.bench.procmem import PeakMemorySampler
from candleflow.environment import console_script

PG_ADMIN = "dbname=postgres user=postgres host=127.0.0.1 port=5432"
REPO_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def bench_symbols(count: int) -> list[str]:
    return [f"S{i:05d}" for i in range(count)]


def recreate_databases(*names: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def prepare(workdir: Path, storage: str, symbols: list[str], history: int,
            databases: str = "candleflow_bench", through: str | None = None) -> dict[str, str]:
    """A fresh Dagster instance and store with the universe and its daily history in place.

    On Postgres they are the databases ``{databases}_dagster`` and ``{databases}_store``, dropped
    and created again: give each workload its own prefix so that two can run at once.
    """
    home = workdir / "dagster"
    home.mkdir(parents=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(workdir),
           "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}
    if storage == "postgres":
        recreate_databases(f"{databases}_dagster", f"{databases}_store")
        shutil.copy(REPO_DEPLOY / "dagster-postgres.yaml", home / "dagster.yaml")
        env.update(DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_USER="postgres", DAGSTER_PG_PASSWORD="",
                   DAGSTER_PG_DB=f"{databases}_dagster",
                   CANDLEFLOW_STORE_URL=f"postgresql://postgres@127.0.0.1:5432/{databases}_store")
    else:
        shutil.copy(REPO_DEPLOY / "dagster-sqlite.yaml", home / "dagster.yaml")
    cli = [sys.executable, "-m", "candleflow.cli"]
    subprocess.run([*cli, "universe", "add", *symbols], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "preload", "--sessions", str(history), *(["--through", through] if through else [])],
                   env=env, check=True, capture_output=True)
    return env


#: The jobs a universe run can be: one step for every symbol, or shards on worker processes.
JOBS = ("market_data", "market_data_universe")


def timed_run(env: dict[str, str], symbols: list[str], config: Path | None = None,
              job: str = "market_data") -> dict:
    """``dagster job execute`` of ``job`` over ``symbols`` (``market_data``: as a partition range;
    ``market_data_universe``: the universe), with the run config file ``config`` if given, timed."""
    command = [console_script("dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", job]
    if job == "market_data":
        command += ["--tags", json.dumps(partition_range_tags(symbols))]
    if config is not None:
        command += ["-c", str(config)]
    log = Path(env["CANDLEFLOW_HOME"]) / "run.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakMemorySampler(process.pid) as memory:
            code = process.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"dagster job execute exited {code}; see {log}:\n{log.read_text()[-3000:]}")
    return {"wall_seconds": round(wall, 2), "peak_memory_mb": round(memory.peak / 2**20, 1),
            "peak_pss_mb": round(memory.peak_pss / 2**20, 1),
            **run_figures(env, wall)}


@contextmanager
def instance_of(env: dict[str, str]):
    """The Dagster instance ``env`` points at (DAGSTER_HOME, and the DAGSTER_PG_* variables its
    dagster.yaml reads), with ``env`` in ``os.environ`` only while it is open: a later
    ``prepare`` copies ``os.environ``, and must not inherit this run's source settings."""
    from dagster import DagsterInstance

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_figures(env: dict[str, str], wall: float) -> dict:
    """Stage seconds, rows and event counts of the latest run of the instance ``env`` points at."""
    from dagster import AssetKey, DagsterEventType

    with instance_of(env) as instance:
        run = instance.get_runs(limit=1)[0]
        events = instance.all_logs(run.run_id)
        # per asset and step (a shard of a universe run is a step): seconds, rows, tracking seconds
        by_step: dict[tuple[str, str], tuple[float, int, float]] = {}
        for record in events:
            event = record.dagster_event
            if event is None or event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
                continue
            materialization = event.event_specific_data.materialization
            key = (materialization.asset_key.to_user_string(), event.step_key)
            if key not in by_step:
                metadata = materialization.metadata
                by_step[key] = (metadata["stage_seconds"].value, metadata["run_rows"].value,
                                metadata["tracking_seconds"].value)
        stages, rows = {}, {}
        for (name, _), (seconds, count, _) in by_step.items():
            stages[name] = stages.get(name, 0.0) + seconds
            rows[name] = rows.get(name, 0) + count
        tracking = sum({step: seconds for (_, step), (_, _, seconds) in by_step.items()}.values())
        record = instance.get_run_record_by_id(run.run_id)
        materialized = {name: len(instance.get_materialized_partitions(AssetKey(name))) for name in stages}
    own_work = sum(stages.values()) + tracking
    return {
        **step_figures(events),
        "run_status": run.status.value,
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "tracking_seconds": round(tracking, 2),
        "rows_written": rows,
        "dagster_bookkeeping_seconds": round(wall - own_work, 2),
        "dagster_share": round((wall - own_work) / wall, 3),
        "run_queue_to_start_seconds": round((record.start_time or 0) - record.create_timestamp.timestamp(), 2),
        "events_in_run": len(events),
        "partitions_materialized": materialized,
    }


def step_figures(events) -> dict:
    """From a run's event log: ``stages_wall_seconds``, from the first step that runs stages
    starting to the last step ending (with shards on several processes, less than the stages'
    summed seconds), ``worker_start_seconds``, the median time from Dagster launching a step's
    process to the step running in it (multiprocess executor only), and each step's seconds from
    its start to its end (its stages, tracking and events)."""
    from dagster import DagsterEventType

    starts, ends, launching, launched = {}, {}, {}, {}
    for record in events:
        event = record.dagster_event
        if event is None or event.step_key is None or event.step_key == "plan_shards":
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = record.timestamp
        elif event.event_type == DagsterEventType.STEP_WORKER_STARTING:
            launching[event.step_key] = record.timestamp
        elif event.event_type == DagsterEventType.STEP_WORKER_STARTED:
            launched[event.step_key] = record.timestamp
    waits = [launched[step] - launching[step] for step in launched if step in launching]
    return {"stages_wall_seconds": round(max(ends.values()) - min(starts.values()), 2) if starts and ends else None,
            "worker_start_seconds": round(statistics.median(waits), 2) if waits else None,
            "step_seconds": {step: round(ends[step] - starts[step], 2) for step in starts if step in ends}}


def universe_day(symbols: int, storage: str, runs: int, history: int = 260, job: str = "market_data",
                 workers: int = 0) -> dict:
    """``runs`` universe runs of ``job`` (``market_data_universe`` on ``workers`` processes, 0: one
    per core), each on a fresh instance and store."""
    universe = bench_symbols(symbols)
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as tmp:
            env = prepare(Path(tmp), storage, universe, history)
            env["CANDLEFLOW_WORKERS"] = str(workers)
            results.append(timed_run(env, universe, job=job))
    return {"workload": "universe-day", "symbols": symbols, "storage": storage, "job": job,
            "workers": workers or os.cpu_count(), "history_sessions": history, "runs": results}


UNIVERSE_DAY_FIGURES = ("wall_seconds", "peak_memory_mb", "tracking_seconds",
                        "dagster_bookkeeping_seconds", "dagster_share")
STEP_FIGURES = ("peak_pss_mb", "stages_wall_seconds", "worker_start_seconds")


def median_figures(runs: list[dict], keys: Sequence[str] = UNIVERSE_DAY_FIGURES,
                   per_stage: Sequence[str] = ("stage_seconds",)) -> dict:
    """Medians over ``runs`` of each figure in ``keys``, and of each stage's value in each
    ``per_stage`` mapping (default: universe-day's wall, memory, tracking and Dagster figures
    and its seconds per stage)."""
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    for mapping in per_stage:
        out[mapping] = {s: round(statistics.median(r[mapping][s] for r in runs), 3)
                        for s in runs[0][mapping]}
    return out
