"""Workload "celery-day": universe-day through the Celery path, beside the multiprocess figures.

The same preparation as universe-day on Postgres (N symbols, daily history stored, not timed), then
one session through ``market_data_sharded`` launched with ``dagster job execute``, its shards run by
local dagster-celery workers (one process each; RabbitMQ at 127.0.0.1:5672). Timed: wall seconds of
the CLI; from the run's event log, per stage the seconds summed over the shard steps and those of
the slowest one, the tracking seconds, and the rest of the wall time along the critical path
(slowest shard, then the scan step): run creation, task dispatch, step start-up in the workers,
events. Peak memory: the peaks of the CLI's process tree and of each worker's, added up.

``python -m candleflow.bench celery-day --symbols 250 --runs 3`` prints JSON with the medians of
both paths (the multiprocess one is universe-day on Postgres).
"""

import json
import math
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from candleflow.bench.procmem import PeakMemorySampler
from candleflow.bench.universe_day import bench_symbols, instance_of, median_figures, prepare, universe_day
from candleflow.celery_workers import LocalWorkers, delete_queue
from candleflow.environment import console_script
from candleflow.settings import Settings

CELERY_FIGURES = ("wall_seconds", "peak_memory_mb", "tracking_seconds", "dagster_and_celery_seconds",
                  "dagster_and_celery_share")
CELERY_PER_STAGE = ("stage_seconds", "slowest_step_stage_seconds")
#: This machine's RabbitMQ: the default broker and backend.
DEFAULTS = Settings()


def timed_celery_run(env: dict[str, str], workers: LocalWorkers, shard_size: int) -> dict:
    folder = Path(env["CANDLEFLOW_HOME"])
    (folder / "sharded.json").write_text(json.dumps({"ops": {"plan_shards": {"config": {"shard_size": shard_size}}}}))
    command = [console_script("dagster"), "job", "execute", "-m", "candleflow.definitions",
               "-j", "market_data_sharded", "-c", str(folder / "sharded.json")]
    log = folder / "run.log"
    started = time.perf_counter()
    with open(log, "w") as out, ExitStack() as sampling:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        samplers = [sampling.enter_context(PeakMemorySampler(pid))
                    for pid in (process.pid, *(worker.pid for worker in workers.processes.values()))]
        code = process.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"dagster job execute exited {code}; see {log}:\n{log.read_text()[-3000:]}")
    return {"wall_seconds": round(wall, 2), "peak_memory_mb": round(sum(s.peak for s in samplers) / 2**20, 1),
            **sharded_run_figures(env, wall)}


def sharded_run_figures(env: dict[str, str], wall: float) -> dict:
    """Per-step figures of the latest run, from the metadata its materializations carry."""
    from dagster import AssetKey, DagsterEventType

    with instance_of(env) as instance:
        run = instance.get_runs(limit=1)[0]
        events = instance.all_logs(run.run_id)
        steps: dict[str, dict] = {}  # step key -> {"stages": {stage: (seconds, rows)}, "tracking": s}
        for record in events:
            event = record.dagster_event
            if event is None or event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
                continue
            materialization = event.event_specific_data.materialization
            metadata = materialization.metadata
            step = steps.setdefault(record.step_key, {"stages": {}, "tracking": 0.0})
            step["stages"][materialization.asset_key.to_user_string()] = (
                metadata["stage_seconds"].value, metadata["run_rows"].value)
            step["tracking"] = metadata["tracking_seconds"].value
        stages = sorted({stage for step in steps.values() for stage in step["stages"]})
        materialized = {name: len(instance.get_materialized_partitions(AssetKey(name))) for name in stages}
    own = {key: sum(s for s, _ in step["stages"].values()) + step["tracking"] for key, step in steps.items()}
    shards = [key for key in own if key.startswith("process_shard")]
    critical_path = max(own[key] for key in shards) + own.get("scan_universe", 0.0)
    return {
        "run_status": run.status.value,
        "shards": len(shards),
        "stage_seconds": {stage: round(sum(step["stages"][stage][0] for step in steps.values()
                                           if stage in step["stages"]), 2) for stage in stages},
        "slowest_step_stage_seconds": {stage: round(max(step["stages"][stage][0] for step in steps.values()
                                                        if stage in step["stages"]), 2) for stage in stages},
        "tracking_seconds": round(sum(step["tracking"] for step in steps.values()), 2),
        "rows_written": {stage: sum(step["stages"][stage][1] for step in steps.values() if stage in step["stages"])
                         for stage in stages},
        "dagster_and_celery_seconds": round(wall - critical_path, 2),
        "dagster_and_celery_share": round((wall - critical_path) / wall, 3),
        "events_in_run": len(events),
        "partitions_materialized": materialized,
    }


def celery_day(symbols: int, runs: int, workers: int = 2, shard_size: int = 0, history: int = 260) -> dict:
    """``shard_size`` 0: one shard per worker."""
    universe = bench_symbols(symbols)
    shard_size = shard_size or math.ceil(symbols / workers)
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as tmp:
            queue = f"candleflow-bench-{uuid.uuid4().hex[:8]}"
            env = {**prepare(Path(tmp), "postgres", universe, history, databases="candleflow_bench_celery"), "CANDLEFLOW_CELERY_BROKER": DEFAULTS.celery_broker,
                   "CANDLEFLOW_CELERY_BACKEND": DEFAULTS.celery_backend, "CANDLEFLOW_CELERY_QUEUE": queue}
            try:
                with LocalWorkers(env, queue, Path(tmp) / "workers", count=workers) as local:
                    results.append(timed_celery_run(env, local, shard_size))
            finally:
                delete_queue(DEFAULTS.celery_broker, queue)
    multiprocess = universe_day(symbols, "postgres", runs, history)
    return {"workload": "celery-day", "symbols": symbols, "storage": "postgres", "history_sessions": history,
            "celery": {"workers": workers, "shard_size": shard_size, "runs": results,
                       "median": median_figures(results, CELERY_FIGURES, CELERY_PER_STAGE)},
            "multiprocess": {"runs": multiprocess["runs"], "median": median_figures(multiprocess["runs"])}}


