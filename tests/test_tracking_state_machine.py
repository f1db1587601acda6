"""Guarded status transitions of TrackingService on SQLite and Postgres.

Expected outcomes are written out by hand from the status flow (seed 004 and the service docstring):
PENDING -> PROCESSING -> COMPLETED | FAILED | CANCELLED, PENDING -> CANCELLED, FAILED -> PENDING
only through retry while attempts < max_attempts; COMPLETED and CANCELLED never move.
"""

import time
from datetime import timedelta

import pytest

from candleflow.tracking import TaskKey, TrackingService
from candleflow.tracking.models import UnknownDomain
from tests.tracking_fixtures import T0, Clock, count_rows, fetch, new_run_id

DOMAIN = "indicators"
OPERATIONS = ("start", "progress", "complete", "fail", "cancel", "retry")

# (status before, operation) -> status after; None = refused (row unchanged)
EXPECTED = {
    ("PENDING", "start"): "PROCESSING",
    ("PENDING", "progress"): None,
    ("PENDING", "complete"): None,
    ("PENDING", "fail"): None,
    ("PENDING", "cancel"): "CANCELLED",
    ("PENDING", "retry"): None,
    ("PROCESSING", "start"): None,
    ("PROCESSING", "progress"): "PROCESSING",
    ("PROCESSING", "complete"): "COMPLETED",
    ("PROCESSING", "fail"): "FAILED",
    ("PROCESSING", "cancel"): "CANCELLED",
    ("PROCESSING", "retry"): None,
    ("COMPLETED", "start"): None,
    ("COMPLETED", "progress"): None,
    ("COMPLETED", "complete"): None,
    ("COMPLETED", "fail"): None,
    ("COMPLETED", "cancel"): None,
    ("COMPLETED", "retry"): None,
    ("FAILED", "start"): None,
    ("FAILED", "progress"): None,
    ("FAILED", "complete"): None,
    ("FAILED", "fail"): None,
    ("FAILED", "cancel"): None,
    ("FAILED", "retry"): "PENDING",
    ("CANCELLED", "start"): None,
    ("CANCELLED", "progress"): None,
    ("CANCELLED", "complete"): None,
    ("CANCELLED", "fail"): None,
    ("CANCELLED", "cancel"): None,
    ("CANCELLED", "retry"): None,
}


def _task_in(service: TrackingService, status: str, run_id: str) -> int:
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="indicators", partition_keys=["AAPL"])
    if status == "CANCELLED":
        service.cancel(DOMAIN, [task_id], "operator")
    if status in ("PROCESSING", "COMPLETED", "FAILED"):
        service.start(DOMAIN, [task_id], run_id)
    if status == "COMPLETED":
        service.complete(DOMAIN, [task_id], rows_written=5)
    if status == "FAILED":
        service.fail(DOMAIN, [task_id], {task_id: "boom"})
    return task_id


def _apply(service: TrackingService, operation: str, task_id: int, run_id: str):
    if operation == "start":
        return service.start(DOMAIN, [task_id], run_id)
    if operation == "progress":
        return service.progress(DOMAIN, [task_id], 3, 10)
    if operation == "complete":
        return service.complete(DOMAIN, [task_id], rows_written={task_id: 42}, span=(100, 200))
    if operation == "fail":
        return service.fail(DOMAIN, [task_id], {task_id: "late failure"})
    if operation == "cancel":
        return service.cancel(DOMAIN, [task_id], "stop")
    return service.retry(DOMAIN, [task_id])


@pytest.mark.parametrize("before,operation", sorted(EXPECTED))
def test_transition(tracking_engine, before, operation):
    clock = Clock()
    service = TrackingService(tracking_engine, now=clock)
    run_id = new_run_id()
    task_id = _task_in(service, before, run_id)
    assert fetch(tracking_engine, DOMAIN, task_id)["status"] == before
    row_before = fetch(tracking_engine, DOMAIN, task_id)

    clock.at(60)
    result = _apply(service, operation, task_id, run_id)
    after = EXPECTED[(before, operation)]
    row = fetch(tracking_engine, DOMAIN, task_id)
    if after is None:
        assert (result.changed, result.refused) == (0, 1)
        assert row == row_before
    else:
        assert (result.changed, result.refused) == (1, 0)
        assert result.changed_ids == [task_id]
        assert row["status"] == after
        assert row["updated_at"] == T0 + timedelta(seconds=60)


def test_start_sets_attempts_times_and_run(tracking_engine):
    clock = Clock()
    service = TrackingService(tracking_engine, now=clock)
    first, retry_run = new_run_id(), new_run_id()
    [task_id] = service.create(DOMAIN, run_id=first, step_key="indicators", partition_keys=["MSFT"],
                               interval="1d", metadata={"parent": "derived_bars"})
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert row["status"] == "PENDING"
    assert (row["attempts"], row["max_attempts"], row["rows_written"]) == (0, 3, 0)
    assert (row["symbol"], row["interval"], row["metadata_json"]) == ("MSFT", "1d", {"parent": "derived_bars"})
    assert row["created_at"] == T0 and row["created_at"].tzinfo is not None
    assert (row["run_id"], row["root_run_id"]) == (first, first)

    service.start(DOMAIN, [task_id], first)
    clock.at(30)
    service.fail(DOMAIN, [task_id], "timeout")
    clock.at(40)
    service.retry(DOMAIN, [task_id])
    clock.at(50)
    service.start(DOMAIN, [task_id], retry_run)
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert row["status"] == "PROCESSING"
    assert row["attempts"] == 2
    assert row["started_at"] == T0 + timedelta(seconds=50)
    assert row["heartbeat_at"] == T0 + timedelta(seconds=50)
    assert (row["run_id"], row["root_run_id"]) == (retry_run, first)
    assert row["completed_at"] is None and row["error_message"] is None


def test_complete_before_start_is_refused_and_start_still_works(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    run_id = new_run_id()
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL"])
    assert service.complete(DOMAIN, [task_id], rows_written=9).refused == 1
    assert fetch(tracking_engine, DOMAIN, task_id)["status"] == "PENDING"
    assert service.start(DOMAIN, [task_id], run_id).changed == 1
    assert fetch(tracking_engine, DOMAIN, task_id)["status"] == "PROCESSING"


def test_duplicate_complete_is_a_no_op(tracking_engine):
    clock = Clock()
    service = TrackingService(tracking_engine, now=clock)
    run_id = new_run_id()
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL"])
    service.start(DOMAIN, [task_id], run_id)
    clock.at(10)
    assert service.complete(DOMAIN, [task_id], rows_written={task_id: 120}, span=(1000, 2000)).changed == 1
    clock.at(99)
    again = service.complete(DOMAIN, [task_id], rows_written={task_id: 7}, span=(1, 2))
    assert (again.changed, again.refused) == (0, 1)
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert (row["status"], row["rows_written"], row["span_start"], row["span_end"]) == ("COMPLETED", 120, 1000, 2000)
    assert row["completed_at"] == T0 + timedelta(seconds=10)


def test_late_events_after_complete_change_nothing(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    run_id = new_run_id()
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL"])
    service.start(DOMAIN, [task_id], run_id)
    service.complete(DOMAIN, [task_id], rows_written=3)
    assert service.start(DOMAIN, [task_id], new_run_id()).refused == 1
    assert service.fail(DOMAIN, [task_id], "late").refused == 1
    assert service.retry(DOMAIN, [task_id]).refused == 1
    assert service.cancel(DOMAIN, [task_id], "late").refused == 1
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert (row["status"], row["attempts"], row["error_message"], row["run_id"]) == ("COMPLETED", 1, None, run_id)


def test_retry_stops_at_max_attempts(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    run_id = new_run_id()
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL"], max_attempts=2)
    service.start(DOMAIN, [task_id], run_id)
    service.fail(DOMAIN, [task_id], "first")
    assert service.retry(DOMAIN, [task_id]).changed_ids == [task_id]   # attempts 1 < 2
    service.start(DOMAIN, [task_id], run_id)
    service.fail(DOMAIN, [task_id], "second")
    assert service.retry(DOMAIN, [task_id]).changed_ids == []          # attempts 2 = max
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert (row["status"], row["attempts"], row["error_message"]) == ("FAILED", 2, "second")


def test_create_twice_gives_one_row_and_never_regresses(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    run_id, retry_run = new_run_id(), new_run_id()
    before = count_rows(tracking_engine, DOMAIN)
    ids = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL", "MSFT", "AAPL"])
    assert ids[0] == ids[2] and ids[0] != ids[1]
    service.start(DOMAIN, ids[:1], run_id)
    service.complete(DOMAIN, ids[:1], rows_written=1)
    # the run retry creates the same work again: same rows, statuses kept
    again = service.create(DOMAIN, run_id=retry_run, root_run_id=run_id, step_key="s",
                           partition_keys=["MSFT", "AAPL"])
    assert again == [ids[1], ids[0]]
    assert count_rows(tracking_engine, DOMAIN) == before + 2
    assert fetch(tracking_engine, DOMAIN, ids[0])["status"] == "COMPLETED"
    assert fetch(tracking_engine, DOMAIN, ids[1])["run_id"] == run_id  # created by the first run
    # another step of the same run is other work
    other = service.create(DOMAIN, run_id=run_id, step_key="t", partition_keys=["AAPL"])
    assert other[0] not in ids


def test_task_keys_address_rows_like_ids(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    run_id = new_run_id()
    ids = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL", "MSFT"])
    keys = [TaskKey(run_id, "s", "AAPL"), TaskKey(run_id, "s", "MSFT")]
    assert service.start(DOMAIN, keys, run_id).changed_ids == sorted(ids)
    result = service.complete(DOMAIN, keys, rows_written={keys[0]: 11, keys[1]: 22})
    assert result.changed == 2
    assert fetch(tracking_engine, DOMAIN, ids[0])["rows_written"] == 11
    assert fetch(tracking_engine, DOMAIN, ids[1])["rows_written"] == 22
    assert service.lookup(DOMAIN, run_id, "s") == {"AAPL": ids[0], "MSFT": ids[1]}
    with pytest.raises(TypeError):
        service.start(DOMAIN, [ids[0], keys[1]], run_id)
    with pytest.raises(UnknownDomain):
        service.start("nope", ids, run_id)


def test_unknown_ids_are_refused(tracking_engine):
    service = TrackingService(tracking_engine, now=Clock())
    result = service.start(DOMAIN, [2_000_000_000], new_run_id())
    assert (result.changed, result.refused) == (0, 1)
    assert service.start(DOMAIN, [], new_run_id()).requested == 0


def test_progress_counts_never_go_backwards(tracking_engine):
    clock = Clock()
    service = TrackingService(tracking_engine, now=clock)
    run_id = new_run_id()
    [task_id] = service.create(DOMAIN, run_id=run_id, step_key="s", partition_keys=["AAPL"])
    service.start(DOMAIN, [task_id], run_id)
    clock.at(5)
    service.progress(DOMAIN, [task_id], 6, 10)
    clock.at(9)
    service.progress(DOMAIN, [task_id], 4, None)  # late, out-of-order event
    row = fetch(tracking_engine, DOMAIN, task_id)
    assert (row["items_completed"], row["items_total"]) == (6, 10)
    assert row["heartbeat_at"] == T0 + timedelta(seconds=9)


def test_bulk_2500_partitions(tracking_engine, tracking_url):
    service = TrackingService(tracking_engine)
    run_id = new_run_id()
    keys = [f"S{i:04d}" for i in range(2500)]
    t0 = time.perf_counter()
    ids = service.create("scans", run_id=run_id, step_key="scan_signals", partition_keys=keys)
    t1 = time.perf_counter()
    started = service.start("scans", ids, run_id)
    t2 = time.perf_counter()
    completed = service.complete("scans", ids, rows_written={task_id: n for n, task_id in enumerate(ids)},
                                 span={task_id: (n, n + 60) for n, task_id in enumerate(ids)})
    t3 = time.perf_counter()
    print(f"\n[{tracking_url.split(':')[0]}] 2,500 rows: create {t1 - t0:.3f} s, start {t2 - t1:.3f} s, "
          f"complete {t3 - t2:.3f} s, total {t3 - t0:.3f} s")
    assert len(set(ids)) == 2500
    assert (started.changed, completed.changed) == (2500, 2500)
    assert service.complete("scans", ids, rows_written=1).refused == 2500
    from sqlalchemy import text
    with tracking_engine.connect() as conn:
        total, n, first, last = conn.execute(text(
            "SELECT SUM(rows_written), COUNT(*), MIN(span_start), MAX(span_end) FROM scans_task_tracking "
            "WHERE root_run_id = :r AND status = 'COMPLETED' AND attempts = 1"), {"r": run_id}).one()
    assert (total, n, first, last) == (3_123_750, 2500, 0, 2559)  # sum(0..2499); 2499 + 60
    assert t3 - t0 < 15


def test_large_calls_are_chunked_within_one_transaction(tracking_engine, monkeypatch):
    import candleflow.tracking.service as service_module

    monkeypatch.setattr(service_module, "CHUNK", 7)  # 20 rows -> UPDATEs of 7, 7 and 6 rows
    service = TrackingService(tracking_engine, now=Clock())
    run_id = new_run_id()
    ids = service.create(DOMAIN, run_id=run_id, step_key="chunked", partition_keys=[f"C{i}" for i in range(20)])
    assert service.start(DOMAIN, ids, run_id).changed == 20
    result = service.complete(DOMAIN, ids, rows_written={task_id: 1000 + n for n, task_id in enumerate(ids)})
    assert result.changed_ids == sorted(ids)
    assert [fetch(tracking_engine, DOMAIN, i)["rows_written"] for i in (ids[0], ids[7], ids[19])] == [1000, 1007, 1019]
