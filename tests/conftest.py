"""Shared fixtures. Postgres tests talk to the server at 127.0.0.1:5432 and never skip."""

import pytest

from candleflow.store import CandleStore
from tests.tracking_fixtures import drop_postgres_database, migrated_engine, new_postgres_database

#: Fixtures that make a Postgres database: a test using one is marked ``postgres``.
POSTGRES_FIXTURES = {"make_postgres_database", "postgres_database", "postgres_url"}


def pytest_collection_modifyitems(items):
    """Mark the tests that talk to Postgres: those using a Postgres fixture, and those run with
    the ``postgres`` parameter of a backend-parametrized fixture (``store_url``, ``tracking_url``).
    The RabbitMQ and Chromium tests carry their marker in their module."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if POSTGRES_FIXTURES & set(item.fixturenames) or "postgres" in params.values():
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def make_postgres_database():
    """Makes fresh, empty Postgres databases (returns each one's name); drops them afterwards."""
    names = []

    def make() -> str:
        names.append(new_postgres_database())
        return names[-1]

    yield make
    for name in names:
        drop_postgres_database(name)


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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tracking_url(request, tmp_path_factory):
    """A store database per backend, shared by the tests of one module (module scope keeps the
    tracking tests fast: each test works on its own run ids, so they do not see each other's rows)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('tracking') / 'store.db'}"
        return
    name = new_postgres_database()
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="module")
def tracking_engine(tracking_url):
    """An engine on ``tracking_url`` with the store schema migrated to head."""
    yield from migrated_engine(tracking_url)
