"""Faults during tracking writes: a Postgres connection killed mid-write, a read-only Postgres
database, a full SQLite database. Postgres tests use the server at 127.0.0.1:5432 and never skip."""

import logging
import threading
import time

import psycopg2
import pytest
from sqlalchemy import event, text

from candleflow.store.migrate import upgrade_schema
from candleflow.store.store import make_engine
from candleflow.tracking import TrackingService, TrackingWriteError
from tests.tracking_fixtures import PG_ADMIN, count_rows, fetch, migrated_engine, new_run_id, pg_admin

DOMAIN = "derived_bars"


@pytest.fixture
def pg_engine(postgres_url):
    yield from migrated_engine(postgres_url)


def _processing(service: TrackingService, keys: list[str]) -> tuple[str, list[int]]:
    run_id = new_run_id()
    ids = service.create(DOMAIN, run_id=run_id, step_key="derived_bars", partition_keys=keys)
    service.start(DOMAIN, ids, run_id)
    return run_id, ids


def _blocked_update_pid(database: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = pg_admin("SELECT pid FROM pg_stat_activity WHERE datname = '%s' AND wait_event_type = 'Lock' "
                        "AND query LIKE 'WITH v%%'" % database)
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError("the tracking UPDATE never blocked")


def test_connection_terminated_during_a_write_is_retried_once(pg_engine, postgres_database, caplog):
    service = TrackingService(pg_engine)
    _, ids = _processing(service, ["AAPL", "MSFT", "NVDA"])

    # Hold a row lock so that the service's UPDATE is in flight (blocked) when its backend is killed.
    locker = psycopg2.connect(PG_ADMIN.replace("dbname=postgres", f"dbname={postgres_database}"))
    with locker.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {DOMAIN}_task_tracking WHERE id = %s FOR UPDATE", (ids[1],))
    outcome: dict = {}

    def write() -> None:
        try:
            outcome["result"] = service.complete(DOMAIN, ids, rows_written={ids[0]: 10, ids[1]: 20, ids[2]: 30})
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    caplog.set_level(logging.WARNING, logger="candleflow.tracking.service")
    writer = threading.Thread(target=write)
    writer.start()
    pid = _blocked_update_pid(postgres_database)
    assert pg_admin(f"SELECT pg_terminate_backend({pid}, 5000)") == [(True,)]
    locker.rollback()
    locker.close()
    writer.join(30)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].changed == 3
    # libpq here reports "server closed the connection unexpectedly" without a SQLSTATE (not 57P01);
    # SQLAlchemy classifies it as a disconnect either way.
    assert "lost its connection" in caplog.text and "retrying once" in caplog.text
    assert count_rows(pg_engine, DOMAIN) == 3
    rows = [fetch(pg_engine, DOMAIN, i) for i in ids]
    assert [(r["status"], r["attempts"], r["rows_written"]) for r in rows] == [
        ("COMPLETED", 1, 10), ("COMPLETED", 1, 20), ("COMPLETED", 1, 30)]


def test_second_disconnect_gives_a_tracking_write_error(pg_engine):
    service = TrackingService(pg_engine)
    _, ids = _processing(service, ["AAPL"])
    kills = []

    @event.listens_for(pg_engine, "before_cursor_execute")
    def _kill_own_backend(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("WITH v"):
            pid = conn.connection.dbapi_connection.get_backend_pid()
            kills.append(pg_admin(f"SELECT pg_terminate_backend({pid}, 5000)"))

    try:
        with pytest.raises(TrackingWriteError) as info:
            service.complete(DOMAIN, ids, rows_written=5)
    finally:
        event.remove(pg_engine, "before_cursor_execute", _kill_own_backend)
    assert len(kills) == 2  # the first try and the one retry
    assert info.value.operation == "complete" and info.value.table == "derived_bars_task_tracking"
    assert "complete on derived_bars_task_tracking failed" in str(info.value)
    row = fetch(pg_engine, DOMAIN, ids[0])
    assert (row["status"], row["rows_written"]) == ("PROCESSING", 0)


def test_read_only_postgres_database_gives_a_clear_error(pg_engine, postgres_database):
    service = TrackingService(pg_engine)
    _, ids = _processing(service, ["AAPL", "MSFT"])
    pg_admin(f'ALTER DATABASE "{postgres_database}" SET default_transaction_read_only = on')
    pg_engine.dispose()  # the setting applies to new connections

    with pytest.raises(TrackingWriteError) as info:
        service.complete(DOMAIN, ids, rows_written=7)
    error = info.value
    assert error.operation == "complete" and error.sqlstate == "25006"
    assert "read-only transaction" in str(error) and "derived_bars_task_tracking" in str(error)

    with pytest.raises(TrackingWriteError, match="create on derived_bars_task_tracking .*read-only"):
        service.create(DOMAIN, run_id=new_run_id(), step_key="derived_bars", partition_keys=["IBM", "ORCL"])

    assert count_rows(pg_engine, DOMAIN) == 2
    assert [fetch(pg_engine, DOMAIN, i)["status"] for i in ids] == ["PROCESSING", "PROCESSING"]


def test_full_sqlite_database_gives_a_clear_error_and_writes_nothing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade_schema(engine)
    service = TrackingService(engine)
    _, ids = _processing(service, [f"S{i:03d}" for i in range(20)])
    with engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    with pytest.raises(TrackingWriteError, match="create on derived_bars_task_tracking .*full"):
        service.create(DOMAIN, run_id=new_run_id(), step_key="derived_bars",
                       partition_keys=[f"X{i:04d}" for i in range(2500)])
    assert count_rows(engine, DOMAIN) == 20  # not a single row of the 2,500

    long_messages = {task_id: f"{task_id} " + "x" * 19_000 for task_id in ids}
    with pytest.raises(TrackingWriteError, match="fail on derived_bars_task_tracking .*full"):
        service.fail(DOMAIN, ids, long_messages)
    rows = [fetch(engine, DOMAIN, i) for i in ids]
    assert {(r["status"], r["error_message"]) for r in rows} == {("PROCESSING", None)}
    engine.dispose()
