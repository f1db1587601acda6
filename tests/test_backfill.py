"""``candleflow backfill``: a window for a universe as one ``market_data_universe`` run on two worker
processes, chunk by chunk; killed mid-way (the command, Dagster's orchestrator and the step
processes, SIGKILL) and run again, it continues from the first unfinished chunk, and the store
ends up holding what an uninterrupted backfill stores, row for row, with every partition
materialized and every check passed.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import date

import dagster as dg
import pandas as pd
import pytest
from pipeline_fixtures import ASSETS, TABLES, table
from test_chunked_windows import assert_same_store

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.registry import STAGES
from candleflow.pipeline.scan_config import load_scans
from candleflow.pipeline.stages import PipelineContext, run_stages
from candleflow.pipeline.window import window_between
from candleflow.sources.synthetic import SyntheticSource

from candleflow.store import CandleStore
from candleflow.tracking.chunks import ChunkRecords

SYMBOLS = [f"S{i:03d}" for i in range(8)]
#: One session of 4 symbols (a shard): every session is a chunk.
ENV = {"CANDLEFLOW_CHUNK_BARS": str(4 * 390), "CANDLEFLOW_WORKERS": "2",
       "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}
WINDOW = ["--from", "2024-02-01", "--to", "2024-02-14"]  # 10 sessions


def deployment(tmp_path, name: str) -> dict[str, str]:
    home = tmp_path / name
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(open("deploy/dagster-sqlite.yaml").read())
    env = {**os.environ, **ENV, "CANDLEFLOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    subprocess.run(cli("universe", "add", *SYMBOLS), env=env, check=True, capture_output=True)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "candleflow.cli", *args]


def store_of(env) -> CandleStore:
    return CandleStore(f"sqlite:///{env['CANDLEFLOW_HOME']}/candleflow.db")


def chunks_recorded(env) -> int:
    try:
        with store_of(env).engine.connect() as conn:
            return int(pd.read_sql("SELECT COUNT(*) AS n FROM run_chunks", conn)["n"].iloc[0])
    except Exception:  # noqa: BLE001 - the table is created by the run's first step
        return 0


def test_killed_backfill_continues_where_it_stopped(tmp_path, monkeypatch):
    whole = deployment(tmp_path, "whole")
    done = subprocess.run(cli("backfill", *WINDOW), env=whole, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 of 10 sessions done by every step" in done.stdout
    # what the shards and the scan step stored is what one step over the window stores
    reference = CandleStore(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.create_schema()
    calendar = ExchangeSessions()
    run_stages(PipelineContext(reference, SyntheticSource(seed=7, calendar=calendar), calendar, DEFAULT_INDICATORS,
                               load_scans(None)), STAGES, SYMBOLS,
               window_between(calendar, *(date.fromisoformat(d) for d in WINDOW[1::2])))
    assert_same_store(store_of(whole), reference)

    env = deployment(tmp_path, "killed")
    first = subprocess.Popen(cli("backfill", *WINDOW), env=env, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 240
    while chunks_recorded(env) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert first.poll() is None, "the backfill ended before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = chunks_recorded(env)
    assert 3 <= killed_at < 30  # of 10 sessions x (2 shards + the scans)

    again = subprocess.run(cli("backfill", *WINDOW), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing backfill 2024-02-01..2024-02-14-" in again.stdout
    assert again.stdout.rstrip().endswith("SUCCESS")
    for name in TABLES:
        pd.testing.assert_frame_equal(table(store_of(env), name), table(store_of(whole), name), obj=name)

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
        root = runs[1].run_id
        assert runs[0].tags["candleflow/root_run_id"] == root
        for asset in ASSETS:
            assert set(instance.get_materialized_partitions(dg.AssetKey(asset))) == set(SYMBOLS)
        checks = [e.dagster_event.event_specific_data for e in instance.all_logs(runs[0].run_id)
                  if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert {c.check_name for c in checks} >= {"valid_candles", "ohlc_consistent", "symbols_evaluated"}
        assert all(c.passed for c in checks)
    records = ChunkRecords(store_of(env).engine)
    assert records.totals(root).chunks == 30  # each chunk once: the killed run's and the rest
    assert sorted(records.sessions_done(root).values()) == [10, 10, 10]

    rerun = subprocess.run(cli("backfill", *WINDOW), env=env, capture_output=True, text=True, timeout=60)
    assert "already succeeded in run" in rerun.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2024-02-14", "--to", "2024-02-01"], "candleflow: error: --to 2024-02-01 is before --from 2024-02-14"),
    ([*WINDOW, "--symbols", "S000", "NOPE"], "candleflow: error: unknown symbol(s) not in the universe: NOPE"),
])
def test_backfill_refuses_bad_arguments(tmp_path, args, message):
    env = deployment(tmp_path, "bad")
    done = subprocess.run(cli("backfill", *args), env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (2, message)
