"""`dagster job execute` and the candleflow CLI, as a user runs them, against a temporary DAGSTER_HOME."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from candleflow.store import CandleStore

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(args, env, check=True):
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=check,
                          timeout=300)


def test_job_execute_one_symbol_and_universe(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path)}
    cli = [sys.executable, "-m", "candleflow.cli"]
    run([*cli, "universe", "add", "AAPL", "MSFT", "KO"], env)
    bad = run([*cli, "universe", "add", "not-a-symbol"], env, check=False)
    assert bad.returncode == 2 and "malformed symbol 'not-a-symbol'" in bad.stderr
    unknown = run([*cli, "universe", "remove", "ZZZ"], env, check=False)
    assert unknown.returncode == 2 and "unknown symbol(s) not in the universe: ZZZ" in unknown.stderr
    run([*cli, "preload", "--sessions", "260", "--through", "2024-03-07"], env)
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"ops": {"market_data_pipeline": {"config": {"start": "2024-03-08"}}}}))
    execute = [str(BIN / "dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
               "-c", str(config)]

    one = run([*execute, "--tags", json.dumps({"dagster/partition": "MSFT"})], env)
    assert "RUN_SUCCESS" in one.stderr + one.stdout
    store = CandleStore(f"sqlite:///{tmp_path / 'candleflow.db'}")
    assert set(store.read_candles(["AAPL", "MSFT", "KO"], "5m")["symbol"]) == {"MSFT"}

    tags = run([*cli, "universe", "range-tags"], env).stdout.strip()
    assert json.loads(tags) == {"dagster/asset_partition_range_start": "AAPL",
                                "dagster/asset_partition_range_end": "KO"}
    everyone = run([*execute, "--tags", tags], env)
    assert "RUN_SUCCESS" in everyone.stderr + everyone.stdout
    assert store.read_candles(["AAPL", "MSFT", "KO"], "1h").groupby("symbol").size().to_dict() == {
        "AAPL": 7, "KO": 7, "MSFT": 7}
    signals = run([*cli, "signals"], env).stdout
    assert "top_momentum_20d" in signals



def test_job_execute_fails_when_every_symbol_failed(tmp_path):
    """AAA's only file is malformed, BBB's has a bad row: no symbol gets through, so the run
    fails, without a retry (the same files fail the same way), naming both reasons."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "AAA.csv").write_text("not a candle file\n")
    (landing / "BBB.csv").write_text("symbol,ts,open,high,low,close,volume\n"
                                     "BBB,2024-03-08T14:30:00Z,10,8,9,10.5,100\n")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path),
           "CANDLEFLOW_SOURCE": "files", "CANDLEFLOW_LANDING_DIR": str(landing)}
    run([sys.executable, "-m", "candleflow.cli", "universe", "add", "AAA", "BBB"], env)
    tags = json.dumps({"dagster/asset_partition_range_start": "AAA", "dagster/asset_partition_range_end": "BBB"})
    execute = run([str(BIN / "dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
                   "--tags", tags], env, check=False)
    output = execute.stderr + execute.stdout
    assert execute.returncode == 1 and "RUN_FAILURE" in output and "RUN_SUCCESS" not in output
    assert "dagster._core.definitions.events.Failure: every symbol failed: AAA.csv: missing column(s) symbol, " \
           "ts, open, high, low, close, volume; BBB at 2024-03-08T14:30:00Z in BBB.csv: high below low (high=8.0, low=9.0)" \
           in output.splitlines()
    assert "STEP_UP_FOR_RETRY" not in output
    store = CandleStore(f"sqlite:///{tmp_path / 'candleflow.db'}")
    assert store.read_candles(["AAA", "BBB"], "1m").empty
