"""job_status, get_task, list_tasks, domain_stats, retention and the reconciler (SQLite and Postgres)."""

from datetime import timedelta

import pytest

from candleflow.tracking import TrackingService
from candleflow.tracking.queries import (RunNotFound, TaskNotFound, domain_stats, get_task, job_status,
                                         list_tasks)
from candleflow.tracking.models import UnknownDomain
from candleflow.tracking.reconcile import TaskRef, find_stale, reconcile
from candleflow.tracking.retention import delete_completed_older_than
from tests.tracking_fixtures import T0, Clock, fetch, migrated_engine


@pytest.fixture
def engine(store_url):
    yield from migrated_engine(store_url)


R1 = "11111111-0000-4000-8000-000000000001"
R2 = "11111111-0000-4000-8000-000000000002"
R3 = "33333333-0000-4000-8000-000000000003"


def test_job_status_reports_a_retried_chain_together(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    ingest = service.create("candle_ingest", run_id=R1, step_key="raw", partition_keys=["AAPL", "MSFT"])
    scans = service.create("scans", run_id=R1, step_key="scan", partition_keys=["AAPL", "MSFT"])
    clock.at(1)
    service.start("candle_ingest", ingest, R1)
    service.start("scans", scans, R1)
    clock.at(10)
    service.complete("candle_ingest", ingest, rows_written=390)
    service.complete("scans", scans[:1], rows_written=1)
    service.fail("scans", scans[1:], "no candles for MSFT")

    first = job_status(engine, R1)
    assert first["status"] == "FAILED"
    assert first["progress"] == {"completed": 3, "finished": 4, "total": 4, "percentage": 75.0}
    assert first["errors"] == [{"domain": "scans", "id": scans[1], "partition_key": "MSFT", "step_key": "scan",
                                "run_id": R1, "attempts": 1, "error_message": "no candles for MSFT"}]

    # run retry R2 (root R1): same rows, re-queued and started by R2
    clock.at(20)
    assert service.create("scans", run_id=R2, root_run_id=R1, step_key="scan",
                          partition_keys=["AAPL", "MSFT"]) == scans
    service.retry("scans", scans)
    clock.at(21)
    service.start("scans", scans, R2)
    middle = job_status(engine, R2)
    assert middle["status"] == "PROCESSING"
    assert middle["root_run_ids"] == [R1]
    assert middle["counts"]["overall"] == {"PENDING": 0, "PROCESSING": 1, "COMPLETED": 3, "FAILED": 0,
                                           "CANCELLED": 0, "total": 4}
    assert middle["counts"]["domains"]["scans"] == {"PENDING": 0, "PROCESSING": 1, "COMPLETED": 1,
                                                    "FAILED": 0, "CANCELLED": 0, "total": 2}
    clock.at(30)
    service.complete("scans", scans, rows_written=2)
    done_r1, done_r2 = job_status(engine, R1), job_status(engine, R2)
    assert done_r1["status"] == done_r2["status"] == "COMPLETED"
    assert done_r1["progress"]["percentage"] == 100.0
    assert done_r2["timestamps"] == {"first_created": "2024-03-08T14:00:00+00:00",
                                     "last_updated": "2024-03-08T14:00:30+00:00",
                                     "first_started": "2024-03-08T14:00:01+00:00",
                                     "last_completed": "2024-03-08T14:00:30+00:00"}
    assert {k: v for k, v in done_r1.items() if k != "run_id"} == {k: v for k, v in done_r2.items()
                                                                   if k != "run_id"}
    with pytest.raises(RunNotFound):
        job_status(engine, R3)


def test_cancelled_job(engine):
    service = TrackingService(engine, now=Clock())
    ids = service.create("derived_bars", run_id=R3, step_key="bars", partition_keys=["A", "B"])
    service.start("derived_bars", ids[:1], R3)
    service.complete("derived_bars", ids[:1])
    service.cancel("derived_bars", ids[1:], "run cancelled")
    assert job_status(engine, R3)["status"] == "CANCELLED"


def test_get_list_and_stats(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    ids = service.create("indicators", run_id=R1, step_key="ind", partition_keys=["A", "B", "C", "D", "E"])
    service.start("indicators", ids, R1)
    for n, seconds in enumerate([1, 2, 3, 4]):  # durations 1, 2, 3, 4 s
        clock.at(seconds)
        service.complete("indicators", [ids[n]], rows_written=10)
    service.fail("indicators", [ids[4]], "bad")

    task = get_task(engine, "indicators", ids[1])
    assert (task["status"], task["partition_key"], task["duration_s"], task["rows_written"]) == (
        "COMPLETED", "B", 2.0, 10)
    assert task["started_at"] == "2024-03-08T14:00:00+00:00"
    with pytest.raises(TaskNotFound):
        get_task(engine, "indicators", 999)
    with pytest.raises(UnknownDomain):
        get_task(engine, "nope", 1)

    listed = list_tasks(engine, "indicators", status="COMPLETED", limit=2, offset=1)
    assert listed["total"] == 4
    assert [t["partition_key"] for t in listed["tasks"]] == ["C", "B"]  # newest id first, skip D

    stats = domain_stats(engine, "indicators")
    assert stats["counts"] == {"PENDING": 0, "PROCESSING": 0, "COMPLETED": 4, "FAILED": 1, "CANCELLED": 0,
                               "total": 5}
    assert (stats["success"], stats["failure"], stats["success_rate"]) == (4, 1, 0.8)
    # numpy linear percentiles of [1, 2, 3, 4]: p50 2.5, p90 3.7, p99 3.97
    assert stats["duration_s"] == {"count": 4, "p50": 2.5, "p90": 3.7, "p99": 3.97, "mean": 2.5, "max": 4.0}
    empty = domain_stats(engine, "scans")
    assert empty["duration_s"]["count"] == 0 and empty["success_rate"] is None


def test_retention_deletes_only_old_completed_rows(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    ids = service.create("candle_ingest", run_id=R1, step_key="raw", partition_keys=["A", "B", "C"])
    service.start("candle_ingest", ids, R1)
    service.complete("candle_ingest", ids[:1])        # completed at T0
    service.fail("candle_ingest", ids[1:2], "x")      # failed at T0: kept
    clock.at(20 * 86400)
    service.complete("candle_ingest", ids[2:])        # completed at T0 + 20 days
    deleted = delete_completed_older_than(engine, days=30, now=T0 + timedelta(days=35))
    assert deleted == {"candle_ingest": 1, "derived_bars": 0, "indicators": 0, "scans": 0, "run_chunks": 0}
    with pytest.raises(TaskNotFound):
        get_task(engine, "candle_ingest", ids[0])
    assert get_task(engine, "candle_ingest", ids[1])["status"] == "FAILED"
    assert get_task(engine, "candle_ingest", ids[2])["status"] == "COMPLETED"


def test_reconcile_fails_and_requeues_stale_processing_rows(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    # R1 finished (crashed worker) with two rows PROCESSING; one of them is out of attempts
    a, b = service.create("scans", run_id=R1, step_key="scan", partition_keys=["A", "B"])
    [c] = service.create("scans", run_id=R1, step_key="scan_b", partition_keys=["C"], max_attempts=1)
    service.start("scans", [a, b, c], R1)
    # R3 is alive; D heartbeats, E went quiet 400 s ago
    d, e = service.create("indicators", run_id=R3, step_key="ind", partition_keys=["D", "E"])
    service.start("indicators", [d, e], R3)
    clock.at(350)
    service.heartbeat("indicators", [d])
    now = T0 + timedelta(seconds=400)

    stale = find_stale(engine, now, 300, lambda run_id: run_id == R1)
    assert [(s.domain, s.id, s.reason) for s in stale] == [
        ("indicators", e, "no heartbeat for 400 s"),
        ("scans", a, f"run {R1} finished while the task was PROCESSING"),
        ("scans", b, f"run {R1} finished while the task was PROCESSING"),
        ("scans", c, f"run {R1} finished while the task was PROCESSING"),
    ]

    report = reconcile(engine, now, 300, lambda run_id: run_id == R1)
    assert report.failed == [TaskRef("indicators", e, "E", R3), TaskRef("scans", a, "A", R1),
                             TaskRef("scans", b, "B", R1), TaskRef("scans", c, "C", R1)]
    assert report.requeued == [TaskRef("indicators", e, "E", R3), TaskRef("scans", a, "A", R1),
                               TaskRef("scans", b, "B", R1)]
    assert fetch(engine, "scans", c)["status"] == "FAILED"
    assert fetch(engine, "scans", c)["error_message"] == f"run {R1} finished while the task was PROCESSING"
    assert fetch(engine, "scans", a)["status"] == "PENDING"
    assert fetch(engine, "indicators", e)["error_message"] == "no heartbeat for 400 s"
    assert fetch(engine, "indicators", d)["status"] == "PROCESSING"
    # nothing left to do
    assert reconcile(engine, now, 300, lambda run_id: run_id == R1).to_dict()["failed"] == []


def test_reconcile_leaves_rows_that_moved_on_and_survives_a_broken_run_lookup(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    [a] = service.create("scans", run_id=R1, step_key="scan", partition_keys=["A"])
    service.start("scans", [a], R1)

    def broken(run_id):
        raise RuntimeError("instance unreachable")

    report = reconcile(engine, T0 + timedelta(seconds=10), 300, broken)
    assert report.failed == [] and report.unknown_runs == [R1]
    assert fetch(engine, "scans", a)["status"] == "PROCESSING"

    # found stale, but the worker completes it before the reconciler writes: left alone
    stale = find_stale(engine, T0 + timedelta(seconds=400), 300, lambda run_id: False)
    assert [s.id for s in stale] == [a]
    service.complete("scans", [a])
    report = reconcile(engine, T0 + timedelta(seconds=400), 300, lambda run_id: False)
    assert report.failed == [] and fetch(engine, "scans", a)["status"] == "COMPLETED"


def test_reconciler_guards_refuse_rows_that_moved_on(engine):
    clock = Clock()
    service = TrackingService(engine, now=clock)
    [a] = service.create("scans", run_id=R1, step_key="scan", partition_keys=["A"])
    service.start("scans", [a], R1)
    clock.at(390)
    service.heartbeat("scans", [a])  # heartbeat after the reconciler's cutoff (T0 + 100 s)
    assert service.fail("scans", [a], "stale", heartbeat_before=T0 + timedelta(seconds=100)).refused == 1
    assert service.fail("scans", [a], "stale", only_run_id=R2).refused == 1  # restarted by another run
    assert fetch(engine, "scans", a)["status"] == "PROCESSING"
