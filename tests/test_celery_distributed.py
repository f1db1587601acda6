"""The sharded pipeline on a distributed deployment: two dagster-celery workers on loopback with this
machine's RabbitMQ as broker, the Dagster instance on Postgres with deploy/dagster-production.yaml,
the domain store on Postgres, runs launched with ``dagster job execute``.

Each test listens on its own queue, so no other worker on this machine takes its tasks.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster import DagsterEventType

from candleflow.celery_workers import LocalWorkers, delete_queue
from candleflow.dagster_steps.partitions import partition_range_tags
from candleflow.store import CandleStore
from tests.pipeline_fixtures import ASSETS, SESSION, TABLES, materialized, prepared_store, statuses, table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
SYMBOLS = [f"D{i:03d}" for i in range(40)]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
DOMAINS = ("candle_ingest", "derived_bars", "indicators", "scans")
DAGSTER_YAML_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB",
                          "DAGSTER_SHARED_DIR")


def deployment(folder: Path, store_db: str, dagster_db: str = "", dagster_yaml: str = "dagster-production.yaml",
               symbols: list[str] = SYMBOLS, **variables: str) -> dict[str, str]:
    """The environment of one deployment, with the universe added and its daily history stored."""
    home = folder / "dagster"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / dagster_yaml, home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(folder),
           "CANDLEFLOW_STORE_URL": f"postgresql://postgres@127.0.0.1:5432/{store_db}",
           "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
           "DAGSTER_PG_DB": dagster_db, "DAGSTER_SHARED_DIR": str(folder / "shared"),
           "CANDLEFLOW_CELERY_BROKER": BROKER, "CANDLEFLOW_CELERY_BACKEND": "rpc://",
           "CANDLEFLOW_CELERY_QUEUE": f"candleflow-test-{uuid.uuid4().hex[:8]}", **variables}
    subprocess.run([sys.executable, "-m", "candleflow.cli", "universe", "add", *symbols], env=env, check=True,
                   capture_output=True)
    prepared_store(env["CANDLEFLOW_STORE_URL"], symbols).dispose()
    return env


@contextmanager
def celery_workers(env: dict[str, str], log_dir: Path) -> Iterator[LocalWorkers]:
    """Two workers on the deployment's own queue; the queue is deleted afterwards."""
    try:
        with LocalWorkers(env, env["CANDLEFLOW_CELERY_QUEUE"], log_dir) as workers:
            yield workers
    finally:
        delete_queue(BROKER, env["CANDLEFLOW_CELERY_QUEUE"])


@contextmanager
def dagster_instance(env: dict[str, str], monkeypatch) -> Iterator[dg.DagsterInstance]:
    """The deployment's Dagster instance, read from this process."""
    for name in DAGSTER_YAML_VARIABLES:
        monkeypatch.setenv(name, env[name])
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        yield instance


@pytest.fixture
def celery_deployment(tmp_path, make_postgres_database):
    return deployment(tmp_path / "celery", make_postgres_database(), make_postgres_database())


@pytest.fixture
def workers(celery_deployment, tmp_path):
    with celery_workers(celery_deployment, tmp_path / "worker-logs") as local:
        yield local


@pytest.fixture
def instance(celery_deployment, monkeypatch):
    with dagster_instance(celery_deployment, monkeypatch) as opened:
        yield opened


def execute(env: dict[str, str], job: str, run_config: dict, tags: dict | None = None) -> subprocess.Popen:
    folder = Path(env["CANDLEFLOW_HOME"])
    (folder / f"{job}.json").write_text(json.dumps(run_config))
    command = [str(BIN / "dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", job,
               "-c", str(folder / f"{job}.json"), *(["--tags", json.dumps(tags)] if tags else [])]
    with open(folder / f"{job}.log", "w") as log:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def finish(env: dict[str, str], process: subprocess.Popen, job: str) -> None:
    code = process.wait(240)
    assert code == 0, (Path(env["CANDLEFLOW_HOME"]) / f"{job}.log").read_text()[-4000:]


def sharded_config(shard_size: int) -> dict:
    return {"ops": {"plan_shards": {"config": {"start": str(SESSION), "shard_size": shard_size}}}}


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """step key -> the Celery workers that began executing it, in order."""
    executed: dict[str, list[str]] = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        worker = record.dagster_event.event_specific_data.metadata.get("Celery worker")
        if worker is not None:
            executed.setdefault(record.step_key, []).append(worker.text.split("@")[0])
    return executed


def store_of(env: dict[str, str]) -> CandleStore:
    return CandleStore(env["CANDLEFLOW_STORE_URL"])


def test_celery_run_equals_multiprocess_run(celery_deployment, workers, instance, tmp_path,
                                            make_postgres_database):
    finish(celery_deployment, execute(celery_deployment, "market_data_sharded", sharded_config(10)),
           "market_data_sharded")
    reference = deployment(tmp_path / "multiprocess", make_postgres_database(), dagster_yaml="dagster-sqlite.yaml")
    finish(reference, execute(reference, "market_data", {"ops": {"market_data_pipeline": {"config": {
        "start": str(SESSION)}}}}, partition_range_tags(SYMBOLS)), "market_data")

    run = instance.get_runs(limit=1)[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    executed = step_workers(instance, run.run_id)
    shards = [f"process_shard[shard_{index:04d}]" for index in range(4)]
    assert sorted(executed) == sorted(["plan_shards", *shards, "scan_universe"])
    assert all(len(by) == 1 for by in executed.values())
    assert {by[0] for by in executed.values()} == set(workers.names)  # the steps spread over both
    for asset in ASSETS:
        assert materialized(instance, asset) == set(SYMBOLS), asset

    store, reference_store = store_of(celery_deployment), store_of(reference)
    for domain in DOMAINS:
        assert statuses(store, domain) == {symbol: ("COMPLETED", 1) for symbol in SYMBOLS}, domain
    assert reference_store.count_rows("signals") > 0
    for name in TABLES:
        pd.testing.assert_frame_equal(table(store, name), table(reference_store, name))


def shard_symbols(step: str, shard_size: int) -> list[str]:
    index = int(step[len("process_shard[shard_"):-1])
    return SYMBOLS[index * shard_size:(index + 1) * shard_size]


def running_shard(instance: dg.DagsterInstance, store: CandleStore, shard_size: int,
                  timeout: float = 120) -> tuple[str, str]:
    """(step key, worker) of a shard seen started in the event log whose tracking rows are
    PROCESSING: a shard in the middle of its work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(limit=1)
        logs = instance.all_logs(runs[0].run_id) if runs else []
        started = {r.step_key for r in logs if r.dagster_event_type == DagsterEventType.STEP_START}
        finished = {r.step_key for r in logs if r.dagster_event_type == DagsterEventType.STEP_SUCCESS}
        shards = sorted(s for s in started - finished if s.startswith("process_shard"))
        assert "scan_universe" not in started, "every shard finished before one was killed"
        rows = statuses(store, "indicators") if shards else {}
        for step in shards:
            if all(rows.get(symbol, ("",))[0] == "PROCESSING" for symbol in shard_symbols(step, shard_size)):
                return step, step_workers(instance, runs[0].run_id)[step][0]
        time.sleep(0.05)
    raise AssertionError("no shard seen running within the timeout")


def test_killed_worker_shard_is_redelivered_and_completed(celery_deployment, workers, instance):
    store = store_of(celery_deployment)
    process = execute(celery_deployment, "market_data_sharded", sharded_config(20))
    step, victim = running_shard(instance, store, shard_size=20)
    workers.kill(victim)
    finish(celery_deployment, process, "market_data_sharded")

    run = instance.get_runs(limit=1)[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    survivor = next(name for name in workers.names if name != victim)
    assert step_workers(instance, run.run_id)[step] == [victim, survivor]  # handed over by RabbitMQ
    for asset in ASSETS:
        assert materialized(instance, asset) == set(SYMBOLS), asset

    # The shard's rows left PROCESSING by the killed attempt were failed and re-run (attempts 2):
    # all of its indicators rows (the last stage: PROCESSING until the shard's end); ingest and
    # bars rows too if the kill came before those stages ended. Every other row: one attempt.
    killed = set(shard_symbols(step, 20))
    rows = {domain: statuses(store, domain) for domain in DOMAINS}
    for domain, by_symbol in rows.items():
        assert set(by_symbol) == set(SYMBOLS), domain
        assert {status for status, _ in by_symbol.values()} == {"COMPLETED"}, domain
        assert {attempts for symbol, (_, attempts) in by_symbol.items() if symbol not in killed} == {1}, domain
    assert {attempts for symbol, (_, attempts) in rows["indicators"].items() if symbol in killed} == {2}
    retried = sum(attempts == 2 for by_symbol in rows.values() for _, attempts in by_symbol.values())
    warnings = [r.user_message for r in instance.all_logs(run.run_id) if r.step_key == step
                and "left PROCESSING by an attempt whose worker was lost" in r.user_message]
    assert warnings == [f"{retried} tracking rows were left PROCESSING by an attempt whose worker was lost: "
                        "failed and re-run now"]


def land(folder: Path, symbol: str, high: float) -> None:
    rows = [f"{symbol},2024-03-08T14:{30 + m:02d}:00Z,10,{high},9,10.5,100" for m in range(20)]
    (folder / f"{symbol}.csv").write_text("symbol,ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n")


def test_failed_symbol_is_visible_and_retried(tmp_path, make_postgres_database, monkeypatch):
    """A bad file fails its symbol alone, in every domain, with the reason; the other symbols of its
    shard complete; `candleflow retry-failed` re-runs just that symbol once its file is fixed."""
    landing = tmp_path / "landing"
    landing.mkdir()
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    for symbol in symbols:
        land(landing, symbol, 8 if symbol == "BBB" else 11)  # BBB: high below low
    env = deployment(tmp_path / "celery", make_postgres_database(), make_postgres_database(), symbols=symbols,
                     CANDLEFLOW_SOURCE="files", CANDLEFLOW_LANDING_DIR=str(landing))
    with celery_workers(env, tmp_path / "worker-logs"):
        finish(env, execute(env, "market_data_sharded", sharded_config(2)), "market_data_sharded")
    store = store_of(env)
    with dagster_instance(env, monkeypatch) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        for asset in ASSETS:
            assert materialized(instance, asset) == {"AAA", "CCC", "DDD"}, asset
    for domain in DOMAINS:
        assert statuses(store, domain) == {"AAA": ("COMPLETED", 1), "BBB": ("FAILED", 1), "CCC": ("COMPLETED", 1),
                                           "DDD": ("COMPLETED", 1)}, domain
    failed = json.loads(subprocess.run([sys.executable, "-m", "candleflow.cli", "status", "job", run.run_id], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    assert failed["errors"][0]["error_message"] == "BBB at 2024-03-08T14:30:00Z in BBB.csv: high below low (high=8.0, low=9.0)"

    land(landing, "BBB", 11)  # the vendor re-delivers a good file
    retried = subprocess.run([sys.executable, "-m", "candleflow.cli", "retry-failed", run.run_id], env=env, cwd=REPO,
                             capture_output=True, text=True)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried.stdout.splitlines()[0] == f"retrying BBB (run chain {run.run_id})"
    for domain in DOMAINS:
        assert statuses(store, domain) == {"AAA": ("COMPLETED", 1), "BBB": ("COMPLETED", 2), "CCC": ("COMPLETED", 1),
                                           "DDD": ("COMPLETED", 1)}, domain
    with dagster_instance(env, monkeypatch) as instance:
        assert materialized(instance, "scan_signals") == set(symbols)
