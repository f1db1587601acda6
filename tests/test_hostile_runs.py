"""Runs that end badly: every symbol failed (the run fails, unretried), a re-queued run's window
(the reconciler's run covers the original run's sessions), and an attempt killed mid-step (the
next attempt of the run chain counts it)."""

import uuid

import dagster as dg
import pandas as pd

from candleflow.dagster_steps.partitions import ROOT_RUN_TAG, SYMBOLS_PARTITIONS_NAME
from candleflow.definitions import defs
from candleflow.defs.market_data.sharded import market_data_sharded_job
from candleflow.defs.tracking.reconciler import tracking_reconciler
from candleflow.pipeline import stage_functions
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.tracked import RunTracker
from candleflow.resources import PipelineSettings, StoreResource, SyntheticCandles
from candleflow.store import CandleStore
from candleflow.tracking.service import TrackingService
from tests.pipeline_fixtures import (
    ASSETS,
    SESSION,
    materialized,
    prepared_store,
    run_pipeline,
    sqlite_instance,
    statuses,
)

DOMAINS = ("candle_ingest", "derived_bars", "indicators", "scans")
STEP = "market_data_pipeline"


def refusing(function, symbol: str):
    """``function`` (a stage's computation on a candle frame) raising for a batch holding ``symbol``:
    a later stage that fails deterministically, on data every bad-row rule accepts."""
    def refuse(frame, *args, **kwargs):
        if symbol in set(frame["symbol"]):
            raise ValueError(f"refused {symbol}")
        return function(frame, *args, **kwargs)
    return refuse


def step_failure(result) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.user_failure_data.description


def retries(result) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def resources(store_url: str) -> dict:
    return {"store": StoreResource(url=store_url), "candle_source": SyntheticCandles(seed=7),
            "settings": PipelineSettings()}


def window_config(start: str, end: str) -> dict:
    return {"ops": {STEP: {"config": {"start": start, "end": end}}}}


def run_in_chain(instance, store_url: str, symbol: str, root_run_id: str, run_config: dict):
    """A market_data run of ``symbol`` continuing the tracking rows of ``root_run_id``."""
    return defs.resolve_job_def("market_data").execute_in_process(
        instance=instance, run_config=run_config, resources=resources(store_url),
        tags={"dagster/partition": symbol, ROOT_RUN_TAG: root_run_id})


def dead_attempt(store_url: str, run_id: str, symbols) -> RunTracker:
    """The tracker of an attempt that began its rows in run ``run_id`` (and was then killed)."""
    tracker = RunTracker(TrackingService(CandleStore(store_url).engine), run_id=run_id, root_run_id=run_id,
                         step_key=STEP, max_attempts=3)
    tracker.begin(list(ASSETS), symbols)
    return tracker


# -- every symbol failed ------------------------------------------------------------------------


def test_run_fails_when_its_only_symbol_fails_in_a_later_stage(tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(stage_functions, "derive_bars", refusing(stage_functions.derive_bars, "AAPL"))
    store = prepared_store(store_url, ["AAPL"])
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["AAPL"], raise_on_error=False)
        assert not result.success
        assert step_failure(result) == "every symbol failed: ValueError: refused AAPL"
        assert retries(result) == 0
        # the stage it got through is still reported
        assert {a: materialized(instance, a) for a in ASSETS} == {
            "raw_candles": {"AAPL"}, "derived_bars": set(), "indicators": set(), "scan_signals": set()}
    assert statuses(store, "candle_ingest") == {"AAPL": ("COMPLETED", 1)}
    assert statuses(store, "derived_bars") == {"AAPL": ("FAILED", 1)}
    assert len(store.read_candles(["AAPL"], "1m")) > 0 and store.read_candles(["AAPL"], "5m").empty


def test_run_fails_when_each_symbol_fails_in_a_different_stage(tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(stage_functions, "derive_bars", refusing(stage_functions.derive_bars, "AAA"))
    monkeypatch.setattr(stage_functions, "compute_indicators", refusing(stage_functions.compute_indicators, "BBB"))
    store = prepared_store(store_url, ["AAA", "BBB"])
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["AAA", "BBB"], raise_on_error=False)
        assert step_failure(result) == "every symbol failed: ValueError: refused AAA; ValueError: refused BBB"
        assert retries(result) == 0
        assert {a: materialized(instance, a) for a in ASSETS} == {
            "raw_candles": {"AAA", "BBB"}, "derived_bars": {"BBB"}, "indicators": set(), "scan_signals": set()}
    assert statuses(store, "derived_bars") == {"AAA": ("FAILED", 1), "BBB": ("COMPLETED", 1)}
    assert statuses(store, "indicators") == {"AAA": ("FAILED", 1), "BBB": ("FAILED", 1)}
    assert set(store.read_candles(["AAA", "BBB"], "5m")["symbol"]) == {"BBB"}


def test_sharded_run_fails_when_every_symbol_failed_before_the_scans(tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(stage_functions, "derive_bars", refusing(stage_functions.derive_bars, "AAPL"))
    store = prepared_store(store_url, ["AAPL"])
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        result = market_data_sharded_job.execute_in_process(
            instance=instance, resources=resources(store_url), raise_on_error=False,
            run_config={"ops": {"plan_shards": {"config": {"symbols": ["AAPL"], "start": str(SESSION),
                                                           "end": str(SESSION)}}}})
        assert step_failure(result) == "every symbol failed: ValueError: refused AAPL"
        assert retries(result) == 0
        assert materialized(instance, "raw_candles") == {"AAPL"}
    assert statuses(store, "scans") == {"AAPL": ("FAILED", 1)}


# -- a re-queued run keeps its window -----------------------------------------------------------


def test_requeued_run_processes_the_window_of_the_original_run(tmp_path, store_url):
    store = prepared_store(store_url, ["AAPL"])
    window = window_config("2024-03-07", "2024-03-08")
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        killed = instance.create_run_for_job(defs.resolve_job_def("market_data"), run_config=window,
                                             tags={"dagster/partition": "AAPL"})
        dead_attempt(store_url, killed.run_id, ["AAPL"])
        instance.report_run_failed(killed)  # what run monitoring does once the worker is gone
        context = dg.build_schedule_context(instance=instance, resources={"store": StoreResource(url=store_url)})
        (request,) = tracking_reconciler(context)
        assert (request.partition_key, request.tags, request.run_config) == (
            "AAPL", {ROOT_RUN_TAG: killed.run_id}, window)

        rerun = run_in_chain(instance, store_url, "AAPL", request.tags[ROOT_RUN_TAG], request.run_config)
    assert rerun.success
    minutes = store.read_candles(["AAPL"], "1m")
    sessions = pd.to_datetime(minutes["bar_start"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    assert sorted(sessions.unique()) == ["2024-03-07", "2024-03-08"]
    for domain in DOMAINS:
        assert statuses(store, domain) == {"AAPL": ("COMPLETED", 2)}, domain


# -- an attempt killed mid-step is counted -------------------------------------------------------


def test_rows_left_processing_by_a_killed_attempt_end_with_attempts_2(tmp_path, store_url):
    store = prepared_store(store_url, ["AAPL"])
    chain = str(uuid.uuid4())
    dead = dead_attempt(store_url, chain, ["AAPL"])
    dead.finish(StageResult("raw_candles", succeeded=["AAPL"], rows={"AAPL": 390}))
    # ... killed here: bars, indicators and scans rows stay PROCESSING
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAPL"])
        rerun = run_in_chain(instance, store_url, "AAPL", chain, window_config(str(SESSION), str(SESSION)))
        warnings = [e.message for e in instance.all_logs(rerun.run_id) if e.level == 30]
    assert "3 tracking rows were left PROCESSING by an attempt whose worker was lost: failed and re-run now" in \
        warnings
    assert statuses(store, "candle_ingest") == {"AAPL": ("COMPLETED", 1)}
    for domain in DOMAINS[1:]:
        assert statuses(store, domain) == {"AAPL": ("COMPLETED", 2)}, domain
