"""Shared fixtures. Postgres tests talk to the server at 127.0.0.1:5432 and never skip."""

import uuid

import psycopg2
import pytest

from candleflow.store import CandleStore

PG_ADMIN = "dbname=postgres user=postgres host=127.0.0.1 port=5432"


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
    conn.close()


@pytest.fixture
def make_postgres_database():
    """Makes fresh, empty Postgres databases (returns each one's name); drops them afterwards."""
    names = []

    def make() -> str:
        names.append(f"candleflow_test_{uuid.uuid4().hex[:10]}")
        _admin(f'CREATE DATABASE "{names[-1]}"')
        return names[-1]

    yield make
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_database(make_postgres_database):
    """A fresh, empty Postgres database; dropped afterwards. Returns its name."""
    return make_postgres_database()


@pytest.fixture
def postgres_url(postgres_database):
    return f"postgresql://postgres@127.0.0.1:5432/{postgres_database}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The domain store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    candle_store = CandleStore(store_url)
    candle_store.create_schema()
    yield candle_store
    candle_store.dispose()
