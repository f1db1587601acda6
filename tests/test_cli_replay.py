"""`candleflow replay` as a user runs it: minutes landed as files, and with --execute run one by one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.replay import replay
from candleflow.sources.synthetic import SyntheticSource
from candleflow.store import CandleStore
from tests.pipeline_fixtures import SESSION

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["AAA", "BBB", "CCC"]
OPEN = int(ExchangeSessions().sessions(SESSION, SESSION)["open"].iloc[0])  # 09:30 New York = 14:30 UTC


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "candleflow.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def test_replay_with_execute_stores_each_minute_as_it_lands(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path)}
    landing = tmp_path / "landing"
    assert cli(env, "universe", "add", *SYMBOLS).returncode == 0

    done = cli(env, "replay", "--session", str(SESSION), "--landing", str(landing), "--speed", "max",
               "--from", "09:30", "--to", "09:36", "--execute")
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.splitlines()
    assert [line.split()[0] for line in printed] == ["09:30", "09:31", "09:32", "09:33", "09:34", "09:35"]
    assert all(line.count("succeeded") == 1 for line in printed)  # one range run per minute
    assert sorted(p.name for p in landing.iterdir()) == sorted(
        f"{s}_20240308T14{m}.csv" for s in SYMBOLS for m in ("30", "31", "32", "33", "34", "35"))

    sessions = ExchangeSessions().sessions(SESSION, SESSION)
    every = SyntheticSource(7, "1m").fetch(SYMBOLS, sessions).candles
    expected = every[every["bar_start"] < OPEN + 6 * 60].reset_index(drop=True)
    store = CandleStore(f"sqlite:///{tmp_path / 'candleflow.db'}")
    pd.testing.assert_frame_equal(store.read_candles(SYMBOLS, "1m"), expected, check_dtype=False)
    five = store.read_candles(SYMBOLS, "5m").set_index(["symbol", "bar_start"])
    for symbol, minutes in expected.groupby("symbol"):
        for start, complete in ((OPEN, True), (OPEN + 300, False)):  # "now" is 09:36 after the last minute
            window = minutes[minutes["bar_start"].between(start, start + 299)]
            bar = five.loc[(symbol, start)]
            assert (bar["open"], bar["close"], bar["high"], bar["low"], bar["volume"], bar["minutes"]) == (
                window["open"].iloc[0], window["close"].iloc[-1], window["high"].max(),
                window["low"].min(), window["volume"].sum(), len(window))
            assert bar["complete"] == complete

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 6 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        landed_only = cli(env, "replay", "--session", str(SESSION), "--landing", str(landing),
                          "--speed", "max", "--from", "09:36", "--to", "09:38")
        assert landed_only.returncode == 0 and len(landed_only.stdout.splitlines()) == 2
        assert "succeeded" not in landed_only.stdout
        assert len(instance.get_runs()) == 6  # picking the files up is the landing sensor's job
    assert len(list(landing.iterdir())) == 24


def test_replay_keeps_the_pace(tmp_path):
    sessions = ExchangeSessions().sessions(SESSION, SESSION)
    minutes = SyntheticSource(7, "1m").fetch(["AAA"], sessions).candles.iloc[:4]
    pauses = []
    landed = list(replay(minutes, tmp_path, speed=2, sleep=pauses.append))  # 2 session minutes a second
    assert [m.bar_start for m in landed] == minutes["bar_start"].tolist()
    assert all(abs(p - (i + 1) * 0.5) < 0.2 for i, p in enumerate(pauses))
