"""The summary ``make demo`` prints, read back from a real run in a Dagster instance configured as
the demo's (deploy/dagster-sqlite.yaml in DAGSTER_HOME)."""

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from candleflow.instance.run_summary import main
from candleflow.resources import LandingFolderCandles
from tests.pipeline_fixtures import prepared_store, run_pipeline, table

SYMBOLS = ["AAPL", "KO", "MSFT"]
SESSION_OPEN = int(datetime(2024, 3, 8, 14, 30, tzinfo=UTC).timestamp())  # 09:30 New York
DEMO_INSTANCE = Path(__file__).parent.parent / "deploy" / "dagster-sqlite.yaml"


def demo_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(DEMO_INSTANCE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def summary_lines(capsys, argv: list[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().out.splitlines()


def rows_of_the_run(store, name: str, symbols) -> int:
    """Rows of ``name`` for ``symbols`` from the session's open on: what the run wrote."""
    frame = table(store, name)
    return int((frame["symbol"].isin(symbols) & (frame["bar_start"] >= SESSION_OPEN)).sum())


def test_summary_of_the_latest_run_names_its_stages_rows_and_checks(tmp_path, monkeypatch, capsys):
    home = demo_home(tmp_path, monkeypatch)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, [*SYMBOLS, "JPM"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_pipeline(instance, store_url, ["JPM"])  # an earlier run: not the one summarized
        run_id = run_pipeline(instance, store_url, SYMBOLS).run_id
    candles = table(store, "candles")
    run_candles = candles[candles["symbol"].isin(SYMBOLS) & (candles["bar_start"] >= SESSION_OPEN)]
    code, lines = summary_lines(capsys, ["--log", "/tmp/demo-run.log"])
    assert code == 0
    assert re.fullmatch(rf"run {run_id} of market_data: SUCCESS in \d+\.\d s", lines[0])
    assert lines[1].split() == ["stage", "symbols", "rows", "seconds"]
    assert [line.split()[:3] for line in lines[2:6]] == [
        ["raw_candles", "3", f"{(run_candles['interval'] == '1m').sum():,}"],
        ["derived_bars", "3", f"{(run_candles['interval'] != '1m').sum():,}"],
        ["indicators", "3", f"{rows_of_the_run(store, 'indicator_values', SYMBOLS):,}"],
        ["scan_signals", "3", f"{rows_of_the_run(store, 'signals', SYMBOLS):,}"],
    ]
    assert lines[6:] == ["checks: 5 passed, 0 failed", "full event log: /tmp/demo-run.log"]


def test_summary_of_a_failed_run_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    home = demo_home(tmp_path, monkeypatch)
    landing = tmp_path / "landing"
    landing.mkdir()  # nothing landed: the only symbol fails in raw_candles, and so does the run
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = run_pipeline(instance, store_url, ["ZZZ"], raise_on_error=False,
                              source=LandingFolderCandles(landing_dir=str(landing))).run_id
    code, lines = summary_lines(capsys, [])
    assert code == 1
    assert re.fullmatch(rf"run {run_id} of market_data: FAILURE in \d+\.\d s", lines[0])
    assert lines[2:] == [
        "  (no stage materialized anything)",
        "checks: 0 passed, 1 failed (raw_candles.valid_candles)",
        f"failed step market_data_pipeline: every symbol failed: no landed file for ZZZ in {landing}"]


def test_no_run_yet_is_an_error(tmp_path, monkeypatch, capsys):
    demo_home(tmp_path, monkeypatch)
    assert main([]) == 1
    assert capsys.readouterr().err == "no run of market_data in the Dagster instance\n"
