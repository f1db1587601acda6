"""One bad symbol fails alone; `candleflow retry-failed RUN_ID` re-runs just that symbol in the same
run chain, and `candleflow status job` reports the chain as the status API does."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = "symbol,ts,open,high,low,close,volume\n"


def land(folder: Path, symbol: str, high: float) -> None:
    rows = [f"{symbol},2024-03-08T14:{30 + m:02d}:00Z,10,{high},9,10.5,100" for m in range(20)]
    (folder / f"{symbol}.csv").write_text(HEADER + "\n".join(rows) + "\n")


def test_retry_only_the_failed_symbol(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    land(landing, "AAA", 11)
    land(landing, "BBB", 8)  # high below low: rejected
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path),
           "CANDLEFLOW_SOURCE": "files", "CANDLEFLOW_LANDING_DIR": str(landing)}
    cli = [sys.executable, "-m", "candleflow.cli"]
    run = lambda *args: subprocess.run([*cli, *args], env=env, cwd=REPO, capture_output=True, text=True)  # noqa: E731
    assert run("universe", "add", "AAA", "BBB").returncode == 0
    tags = json.dumps({"dagster/asset_partition_range_start": "AAA", "dagster/asset_partition_range_end": "BBB"})
    execute = subprocess.run([str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m",
                              "candleflow.definitions", "-j", "market_data", "--tags", tags],
                             env=env, cwd=REPO, capture_output=True, text=True)
    assert execute.returncode == 0, execute.stderr[-2000:]
    run_id = next(line.split(" - ")[4] for line in execute.stderr.splitlines() if "RUN_SUCCESS" in line)

    before = json.loads(run("status", "job", run_id).stdout)
    assert before["status"] == "FAILED"
    assert before["counts"]["overall"]["FAILED"] == 4 and before["counts"]["overall"]["COMPLETED"] == 4
    assert before["errors"][0]["error_message"] == (
        "BBB at 2024-03-08T14:30:00Z in BBB.csv: high below low (high=8.0, low=9.0)")

    land(landing, "BBB", 11)  # the vendor re-delivers a good file
    retried = run("retry-failed", run_id)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "retrying BBB" in retried.stdout and "retrying AAA" not in retried.stdout

    after = json.loads(run("status", "job", run_id).stdout)
    assert after["status"] == "COMPLETED"
    assert after["progress"]["completed"] == after["progress"]["total"] == 8
    ingest = json.loads(run("status", "tasks", "candle_ingest").stdout)["tasks"]
    assert {t["partition_key"]: (t["status"], t["attempts"]) for t in ingest} == {
        "AAA": ("COMPLETED", 1), "BBB": ("COMPLETED", 2)}
