"""Helpers for the task tracking tests (their fixtures are in conftest.py)."""

import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
from sqlalchemy import select

from candleflow.store.migrate import upgrade_schema
from candleflow.store.store import make_engine
from candleflow.tracking.models import DOMAINS

PG_ADMIN = "dbname=postgres user=postgres host=127.0.0.1 port=5432"
T0 = datetime(2024, 3, 8, 14, 0, tzinfo=UTC)


def new_postgres_database() -> str:
    """A fresh, empty Postgres database on the local server; returns its name."""
    name = f"candleflow_test_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_admin(sql: str, dbname: str = "postgres"):
    conn = psycopg2.connect(PG_ADMIN.replace("dbname=postgres", f"dbname={dbname}"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else None
    finally:
        conn.close()


class Clock:
    """A settable clock for TrackingService(now=...)."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> "Clock":
        self.now = T0 + timedelta(seconds=seconds)
        return self


def fetch(engine, domain: str, task_id: int) -> dict:
    table = DOMAINS[domain].__table__
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == task_id)).one()
    return dict(row._mapping)


def count_rows(engine, domain: str) -> int:
    table = DOMAINS[domain].__table__
    with engine.connect() as conn:
        return len(conn.execute(select(table.c.id)).all())


def new_run_id() -> str:
    return str(uuid.uuid4())


def migrated_engine(url: str):
    """An engine on ``url`` with the store schema migrated to head; disposed when the test is done."""
    engine = make_engine(url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()
