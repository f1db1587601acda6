"""`candleflow prune-runs`: finished runs older than the cut-off go, with their event rows; recent
runs and runs not finished stay. On the production instance profile (Postgres)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2

REPO = Path(__file__).resolve().parents[1]


@dg.op
def noop() -> None:
    pass


@dg.job
def trivial():
    noop()


def test_prune_runs_deletes_old_finished_runs_with_their_events(tmp_path, postgres_database, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-production.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "postgres",
                        "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": postgres_database,
                        "DAGSTER_SHARED_DIR": str(tmp_path / "shared")}.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        old, recent = (trivial.execute_in_process(instance=instance).run_id for _ in range(2))
        old_unfinished = instance.create_run_for_job(trivial).run_id
    with psycopg2.connect(f"dbname={postgres_database} user=postgres host=127.0.0.1") as conn, conn.cursor() as cur:
        cur.execute("UPDATE runs SET update_timestamp = update_timestamp - interval '100 days' "
                    "WHERE run_id IN (%s, %s)", (old, old_unfinished))
    conn.close()

    cli = [sys.executable, "-m", "candleflow.cli", "prune-runs", "--older-than-days", "90"]
    dry = subprocess.run([*cli, "--dry-run"], env=os.environ, capture_output=True, text=True, check=True)
    assert dry.stdout.strip() == "would delete 1 finished run(s) older than 90 days, with their events"
    done = subprocess.run(cli, env=os.environ, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "deleted 1 finished run(s) older than 90 days, with their events"

    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(old) is None and instance.all_logs(old) == []
        assert instance.get_run_by_id(recent).is_success and instance.all_logs(recent)
        assert instance.get_run_by_id(old_unfinished).status == dg.DagsterRunStatus.NOT_STARTED


def test_prune_runs_refuses_a_non_positive_age(tmp_path):
    result = subprocess.run([sys.executable, "-m", "candleflow.cli", "prune-runs", "--older-than-days", "0"],
                            env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "candleflow prune-runs: error: argument --older-than-days: must be a positive number of days, got '0'")
