"""A run worker killed with SIGKILL mid-step: the reconciler fails and re-queues its rows, the retry
completes them, and the store ends row for row as after a clean run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from candleflow.dagster_steps.partitions import ROOT_RUN_TAG
from candleflow.defs.tracking.reconciler import HEARTBEAT_TIMEOUT_S, requeue_requests
from candleflow.store import CandleStore
from candleflow.tracking.reconcile import reconcile
from tests.pipeline_fixtures import TABLES, statuses, table

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = [f"K{i:03d}" for i in range(300)]
RUN_CONFIG = {"ops": {"market_data_pipeline": {"config": {"start": "2024-03-08"}}}}


def environment(folder: Path) -> dict[str, str]:
    home = folder / "dagster"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(folder)}
    cli = [sys.executable, "-m", "candleflow.cli"]
    subprocess.run([*cli, "universe", "add", *SYMBOLS], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "preload", "--sessions", "260", "--through", "2024-03-07"], env=env, check=True,
                   capture_output=True)
    (folder / "run.json").write_text(json.dumps(RUN_CONFIG))
    return env


def execute(env: dict[str, str], tags: dict[str, str]) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "candleflow.definitions",
               "-j", "market_data", "-c", str(Path(env["CANDLEFLOW_HOME"]) / "run.json"),
               "--tags", json.dumps({"dagster/asset_partition_range_start": SYMBOLS[0],
                                     "dagster/asset_partition_range_end": SYMBOLS[-1], **tags})]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def test_killed_worker_is_reconciled_and_retried(tmp_path):
    clean_env = environment(tmp_path / "clean")
    assert execute(clean_env, {}).wait(300) == 0

    env = environment(tmp_path / "killed")
    store = CandleStore(f"sqlite:///{tmp_path / 'killed' / 'candleflow.db'}")
    process = execute(env, {})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once ingest is done and the later stages are running
        try:
            ingest, derive = statuses(store, "candle_ingest"), statuses(store, "derived_bars")
        except Exception:  # tables not created yet
            ingest, derive = {}, {}
        if len(ingest) == len(SYMBOLS) and all(s == "COMPLETED" for s, _ in ingest.values()) and any(
                s == "PROCESSING" for s, _ in derive.values()):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait(30) == -signal.SIGKILL
    # Stages finish in order, so the kill left at least indicators and scans PROCESSING.
    interrupted = [d for d in ("derived_bars", "indicators", "scans")
                   if {s for s, _ in statuses(store, d).values()} == {"PROCESSING"}]
    assert interrupted[-2:] == ["indicators", "scans"]

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with dg.DagsterInstance.get() as instance:
        killed_run = instance.get_runs(limit=1)[0]
        assert not killed_run.is_finished  # the default launcher never notices a killed worker
        later = datetime.now(UTC) + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 60)
        report = reconcile(store.engine, later, HEARTBEAT_TIMEOUT_S,
                           lambda run_id: instance.get_run_by_id(run_id).is_finished)
        requests = requeue_requests(instance, store.engine, report)
    # one run per symbol, each over the killed run's window
    assert sorted(r.partition_key for r in requests) == SYMBOLS
    assert all(r.run_config == RUN_CONFIG and r.tags == {ROOT_RUN_TAG: killed_run.run_id} for r in requests)
    assert len(report.failed) == len(report.requeued) == len(interrupted) * len(SYMBOLS)
    for domain in interrupted:
        assert set(statuses(store, domain).values()) == {("PENDING", 1)}, domain

    assert execute(env, {ROOT_RUN_TAG: killed_run.run_id}).wait(300) == 0
    assert set(statuses(store, "candle_ingest").values()) == {("COMPLETED", 1)}
    for domain in interrupted:
        assert set(statuses(store, domain).values()) == {("COMPLETED", 2)}, domain
    clean = CandleStore(f"sqlite:///{tmp_path / 'clean' / 'candleflow.db'}")
    for name in TABLES:
        pd.testing.assert_frame_equal(table(store, name), table(clean, name))
