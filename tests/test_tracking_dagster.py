"""Task tracking rows written by the assets, and kept true by retries, sensors and the reconciler."""

import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg2
import pytest

from candleflow.dagster_steps.partitions import ROOT_RUN_TAG
from candleflow.defs.tracking.reconciler import tracking_reconciler
from candleflow.defs.tracking.run_sensors import tracking_on_run_failure
from candleflow.resources import LandingFolderCandles, StoreResource
from candleflow.store import CandleStore
from candleflow.tracking.queries import job_status, list_tasks
from candleflow.tracking.service import TrackingService
from tests.pipeline_fixtures import prepared_store, run_pipeline, sqlite_instance

DOMAINS = ("candle_ingest", "derived_bars", "indicators", "scans")


def rows_by_symbol(store: CandleStore, domain: str) -> dict[str, dict]:
    return {t["partition_key"]: t for t in list_tasks(store.engine, domain, limit=1000)["tasks"]}


def test_run_writes_a_row_per_stage_and_symbol(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, ["AAPL", "MSFT"])
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["AAPL", "MSFT"])
    for domain in DOMAINS:
        rows = rows_by_symbol(store, domain)
        assert {s: (r["status"], r["attempts"], r["run_id"]) for s, r in rows.items()} == {
            s: ("COMPLETED", 1, result.run_id) for s in ("AAPL", "MSFT")}, domain
    ingest = rows_by_symbol(store, "candle_ingest")["AAPL"]
    assert ingest["rows_written"] == len(store.read_candles(["AAPL"], "1m"))
    assert (ingest["span_start"], ingest["symbol"]) == (1709908200, "AAPL")
    status = job_status(store.engine, result.run_id)
    assert status["status"] == "COMPLETED" and status["progress"]["percentage"] == 100.0


def test_bad_symbol_row_failed_with_reason(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    header = "symbol,ts,open,high,low,close,volume\n"
    (landing / "AAA.csv").write_text(header + "AAA,2024-03-08T14:30:00Z,10,11,9,10.5,100\n")
    (landing / "BBB.csv").write_text(header + "BBB,2024-03-08T14:30:00Z,10,11,9,-10.5,100\n")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, ["AAA", "BBB"])
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["AAA", "BBB"],
                              source=LandingFolderCandles(landing_dir=str(landing)))
    ingest = rows_by_symbol(store, "candle_ingest")
    assert ingest["AAA"]["status"] == "COMPLETED"
    assert (ingest["BBB"]["status"], ingest["BBB"]["error_message"]) == (
        "FAILED", "BBB at 2024-03-08T14:30:00Z in BBB.csv: non-positive price (open=10.0, high=11.0, low=9.0, close=-10.5)")
    later = rows_by_symbol(store, "scans")["BBB"]
    assert later["status"] == "FAILED" and later["error_message"].startswith("not run: an earlier stage failed")
    status = job_status(store.engine, result.run_id)
    assert status["status"] == "FAILED"
    assert status["counts"]["overall"] == {"PENDING": 0, "PROCESSING": 0, "COMPLETED": 4, "FAILED": 4,
                                           "CANCELLED": 0, "total": 8}


def _terminate_blocked_write(database: str, ready: threading.Event, done: threading.Event) -> None:
    """Hold a lock on candles until the run's write waits on it, then kill that backend.

    The lock is held in one connection; a second, autocommit connection watches pg_stat_activity
    (inside a transaction Postgres would keep showing the same snapshot of it).
    """
    holder = psycopg2.connect(dbname=database, user="postgres", host="127.0.0.1")
    holder.cursor().execute("LOCK TABLE candles IN ACCESS EXCLUSIVE MODE")
    watcher = psycopg2.connect(dbname=database, user="postgres", host="127.0.0.1")
    watcher.autocommit = True
    cursor = watcher.cursor()
    ready.set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                       (database,))
        waiting = [row[0] for row in cursor.fetchall()]
        if waiting:
            cursor.execute("SELECT pg_terminate_backend(%s)", (waiting[0],))
            done.set()
            break
        time.sleep(0.05)
    holder.rollback()
    holder.close()
    watcher.close()


def test_connection_killed_during_write_is_retried(tmp_path, postgres_database, postgres_url):
    symbols = ["AAPL", "KO", "MSFT"]
    store = prepared_store(postgres_url, symbols)
    ready, done = threading.Event(), threading.Event()
    killer = threading.Thread(target=_terminate_blocked_write, args=(postgres_database, ready, done))
    killer.start()
    ready.wait(10)
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, postgres_url, symbols)
    killer.join(30)
    assert done.is_set() and result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    for domain in DOMAINS:
        rows = rows_by_symbol(store, domain)
        assert {s: (r["status"], r["attempts"]) for s, r in rows.items()} == {
            s: ("COMPLETED", 2) for s in symbols}, domain
    minutes = store.read_candles(symbols, "1m")
    assert not minutes.duplicated(["symbol", "bar_start"]).any()
    assert rows_by_symbol(store, "candle_ingest")["KO"]["rows_written"] == (minutes["symbol"] == "KO").sum()


def _processing_rows(store_url: str, run_id: str, symbols):
    service = TrackingService(CandleStore(store_url).engine)
    service.create("candle_ingest", run_id=run_id, root_run_id=run_id, step_key="market_data_pipeline",
                   partition_keys=symbols)
    keys = service.lookup("candle_ingest", run_id, "market_data_pipeline")
    service.start("candle_ingest", list(keys.values()), run_id)
    return service


def test_failure_sensor_fails_and_requeues_rows_of_a_failed_run(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    CandleStore(store_url).create_schema()
    with sqlite_instance(tmp_path) as instance:
        @dg.op
        def boom():
            raise RuntimeError("worker lost")

        failed = dg.GraphDefinition(name="g", node_defs=[boom]).to_job(name="market_data").execute_in_process(
            instance=instance, raise_on_error=False)
        _processing_rows(store_url, failed.run_id, ["AAPL"])
        run = instance.get_run_by_id(failed.run_id)
        failure_event = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
        context = dg.build_run_status_sensor_context(
            sensor_name="tracking_on_run_failure", dagster_instance=instance, dagster_run=run,
            dagster_event=failure_event, resources={"store": StoreResource(url=store_url)},
        ).for_run_failure()
        tracking_on_run_failure(context)
    row = rows_by_symbol(CandleStore(store_url), "candle_ingest")["AAPL"]
    assert (row["status"], row["attempts"]) == ("PENDING", 1)
    assert row["error_message"] == f"run {failed.run_id} finished while the task was PROCESSING"


def test_reconciler_requeues_stale_rows_and_reruns_them(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    CandleStore(store_url).create_schema()
    gone_run = "0123abcd-0000-0000-0000-000000000000"  # not in the instance: finished or gone
    _processing_rows(store_url, gone_run, ["AAPL", "MSFT"])
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, resources={"store": StoreResource(url=store_url)})
        requests = tracking_reconciler(context)
    # the run is gone from the instance, and its window with it: the default window
    assert sorted((r.partition_key, r.tags[ROOT_RUN_TAG], r.run_config) for r in requests) == [
        ("AAPL", gone_run, {}), ("MSFT", gone_run, {})]
    rows = rows_by_symbol(CandleStore(store_url), "candle_ingest")
    assert {s: r["status"] for s, r in rows.items()} == {"AAPL": "PENDING", "MSFT": "PENDING"}


@pytest.mark.parametrize("days,expected", [(30, 0), (0, 2)])
def test_retention_job(tmp_path, days, expected):
    from candleflow.defs.tracking.retention import tracking_retention

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    CandleStore(store_url).create_schema()
    service = _processing_rows(store_url, "0123abcd-0000-0000-0000-00000000000a", ["AAPL", "MSFT"])
    ids = list(service.lookup("candle_ingest", "0123abcd-0000-0000-0000-00000000000a", "market_data_pipeline").values())
    TrackingService(service.engine, now=lambda: datetime.now(UTC) - timedelta(days=1)).complete("candle_ingest", ids)
    result = tracking_retention.execute_in_process(
        run_config={"ops": {"delete_old_completed_tasks": {"config": {"days": days}}}},
        resources={"store": StoreResource(url=store_url)})
    assert result.success
    assert len(rows_by_symbol(CandleStore(store_url), "candle_ingest")) == 2 - expected


def test_canceled_run_sensor_cancels_open_rows(tmp_path):
    from candleflow.defs.tracking.run_sensors import tracking_on_run_canceled

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    CandleStore(store_url).create_schema()
    with sqlite_instance(tmp_path) as instance:
        run = instance.create_run_for_job(
            dg.GraphDefinition(name="g", node_defs=[]).to_job(name="market_data"))
        _processing_rows(store_url, run.run_id, ["AAPL"])
        instance.report_run_canceled(run)
        canceled = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_CANCELED)[0].dagster_event
        context = dg.build_run_status_sensor_context(
            sensor_name="tracking_on_run_canceled", dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run.run_id), dagster_event=canceled,
            resources={"store": StoreResource(url=store_url)})
        tracking_on_run_canceled(context)
    row = rows_by_symbol(CandleStore(store_url), "candle_ingest")["AAPL"]
    assert (row["status"], row["error_message"]) == ("CANCELLED", f"run {run.run_id} was canceled")
