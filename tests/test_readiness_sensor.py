"""signals_ready_sensor after real runs: one outbox line per (run, asset), once, matching the store."""

import json

import dagster as dg
import pandas as pd
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

from candleflow.defs.market_data.readiness import outbox_path, signals_ready_sensor
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.validation import format_utc
from tests.pipeline_fixtures import PREVIOUS_SESSION, SESSION, prepared_store, run_pipeline, sqlite_instance

SYMBOLS = ["AAA", "BBB", "CCC"]
OPEN = int(ExchangeSessions().sessions(SESSION, SESSION)["open"].iloc[0])


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLEFLOW_HOME", str(tmp_path / "home"))
    return outbox_path()


def evaluate(instance, cursor=None):
    return signals_ready_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def lines(outbox) -> list[dict]:
    return [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []


def spans(frame: pd.DataFrame, changed_bars_reported: bool) -> dict[str, list[str]]:
    """Per interval the first and last bar written, or ``*`` over all intervals for runs whose
    metadata has only first_bar/last_bar."""
    if not changed_bars_reported:
        frame = frame.assign(interval="*")
    return {interval: [format_utc(bars["bar_start"].min()), format_utc(bars["bar_start"].max())]
            for interval, bars in frame.groupby("interval")}


def has_changed_bars(instance, run_id: str) -> bool:
    event = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)[0]
    return "changed_bars" in event.asset_materialization.metadata


def test_one_line_per_run_and_asset_matching_the_store(tmp_path, outbox):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, SYMBOLS)
    with sqlite_instance(tmp_path) as instance:
        first = run_pipeline(instance, store_url, SYMBOLS)
        assert first.success
        tick = evaluate(instance)
        assert [(line["run_id"], line["asset"]) for line in lines(outbox)] == [
            (first.run_id, "indicators"), (first.run_id, "scan_signals")]
        assert evaluate(instance, tick.cursor).skip_reason.skip_message == "no newly finished runs"
        assert len(lines(outbox)) == 2  # nothing written twice

        reported = has_changed_bars(instance, first.run_id)
        indicators, signals = lines(outbox)
        written = pd.concat([store.read_indicators(SYMBOLS, i, OPEN).assign(interval=i) for i in ("5m", "1h", "1d")])
        assert indicators["symbols"] == SYMBOLS
        assert indicators["changed_bars"] == spans(written, reported)
        stored_signals = store.read_signals(OPEN)
        assert signals["symbols"] == SYMBOLS
        assert signals["rows_by_symbol"] == stored_signals["symbol"].value_counts().sort_index().to_dict()
        assert signals["changed_bars"] == spans(stored_signals, reported)

        second = run_pipeline(instance, store_url, ["BBB"], session=PREVIOUS_SESSION)
        evaluate(instance, tick.cursor)
        assert [(line["run_id"], line["asset"], line["symbols"]) for line in lines(outbox)[2:]] == [
            (second.run_id, "indicators", ["BBB"]), (second.run_id, "scan_signals", ["BBB"])]


def report_materialization(instance, run, asset: str, symbol: str) -> None:
    """What a running step stores for one partition (Dagster's own event, as the step sends it),
    with the metadata of runs from before ``changed_bars``."""
    metadata = {"rows": 1, "first_bar": "2024-03-08T14:30:00Z", "last_bar": "2024-03-08T20:55:00Z"}
    instance.report_dagster_event(DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value, job_name=run.job_name,
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(
            asset_key=asset, partition=symbol, metadata=metadata))), run_id=run.run_id)


def test_a_running_run_is_written_once_it_has_finished(tmp_path, outbox):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    prepared_store(store_url, SYMBOLS)
    with sqlite_instance(tmp_path) as instance:
        running = instance.add_run(dg.DagsterRun(job_name="market_data", status=dg.DagsterRunStatus.STARTED))
        report_materialization(instance, running, "scan_signals", "AAA")
        finished = run_pipeline(instance, store_url, ["CCC"])  # after the running run's first event
        cursor = evaluate(instance).cursor
        assert [(line["run_id"], line["asset"]) for line in lines(outbox)] == [
            (finished.run_id, "indicators"), (finished.run_id, "scan_signals")]

        report_materialization(instance, running, "scan_signals", "BBB")
        instance.report_run_failed(running)
        cursor = evaluate(instance, cursor).cursor
        late = lines(outbox)[2:]
        assert [(line["run_id"], line["asset"], line["symbols"]) for line in late] == [
            (running.run_id, "scan_signals", ["AAA", "BBB"])]
        assert late[0]["rows_by_symbol"] == {"AAA": 1, "BBB": 1}
        assert late[0]["changed_bars"] == {"*": ["2024-03-08T14:30:00Z", "2024-03-08T20:55:00Z"]}
        assert evaluate(instance, cursor).skip_reason is not None and len(lines(outbox)) == 3
