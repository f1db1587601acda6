"""The storage seam: the dialect chosen per URL and engine, its parameter style and statements,
and the repository protocol the pipeline depends on."""

import inspect

import pytest
from sqlalchemy import text

from candleflow.store import CandleStore, MarketDataRepository
from candleflow.store.dialects import DIALECTS, dialect_for_url, dialect_of
from candleflow.store.dialects.postgres import PostgresDialect
from candleflow.store.dialects.sqlite import SqliteDialect
from candleflow.store.store import make_engine, normalize_url


@pytest.mark.parametrize("url,dialect,normalized", [
    ("sqlite:////tmp/store.db", SqliteDialect, "sqlite:////tmp/store.db"),
    ("postgresql://postgres@db/candleflow", PostgresDialect, "postgresql+psycopg2://postgres@db/candleflow"),
    ("postgres://postgres@db/candleflow", PostgresDialect, "postgresql+psycopg2://postgres@db/candleflow"),
    ("postgresql+psycopg2://postgres@db/x", PostgresDialect, "postgresql+psycopg2://postgres@db/x"),
])
def test_a_store_url_chooses_its_dialect_and_driver(url, dialect, normalized):
    assert type(dialect_for_url(url)) is dialect
    assert normalize_url(url) == normalized


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://postgres@db/x", "mysql://root@db/x"])
def test_a_url_no_dialect_serves_is_left_as_it_is(url):
    assert dialect_for_url(url) is None
    assert normalize_url(url) == url


def test_an_engine_and_its_connections_name_their_dialect(store_url):
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert dialect_of(conn) is dialect_of(engine) is dialect_of(engine.dialect)
    engine.dispose()
    assert type(dialect_of(engine)) is (SqliteDialect if store_url.startswith("sqlite") else PostgresDialect)


def test_a_database_without_a_dialect_is_refused_by_name():
    class Other:
        name = "mysql"

    with pytest.raises(ValueError, match="no store dialect for database 'mysql': expected one of sqlite, postgresql"):
        dialect_of(Other())


def test_each_dialect_serves_its_own_sqlalchemy_dialect_once():
    assert sorted(d.name for d in DIALECTS) == ["postgresql", "sqlite"]


@pytest.mark.parametrize("dialect,marker", [(SqliteDialect(), "?"), (PostgresDialect(), "%s")])
def test_named_parameters_become_positional_in_order_of_appearance(dialect, marker):
    sql, args = dialect.driver_statement("SELECT %(a)s, %(b)s WHERE x = %(a)s", {"a": 1, "b": 2, "unused": 3})
    assert sql == f"SELECT {marker}, {marker} WHERE x = {marker}"
    assert args == (1, 2, 1)


def test_an_update_from_values_binds_the_rows_before_the_shared_parameters():
    sql, args = SqliteDialect().update_from_values(
        "jobs", ["k_id", "n"], [(7, 70), (8, 80)], '"n" = v.n, "at" = %(now)s', "t.id = v.k_id", {"now": "T"})
    assert sql == ('WITH v(k_id, n) AS (VALUES (?, ?), (?, ?)) '
                   'UPDATE jobs AS t SET "n" = v.n, "at" = ? FROM v WHERE t.id = v.k_id RETURNING id')
    assert args == (7, 70, 8, 80, "T")


def test_an_update_from_values_runs_on_both_backends(store_url):
    """Rows of v update the matching rows of t; the ids changed come back."""
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE jobs (id INTEGER PRIMARY KEY, n INTEGER, note TEXT)"))
        conn.execute(text("INSERT INTO jobs VALUES (1, 0, NULL), (2, 0, NULL), (3, 0, NULL)"))
        sql, args = dialect_of(conn).update_from_values(
            "jobs", ["k_id", "n"], [(1, 10), (3, 30), (9, 90)], '"n" = CAST(v.n AS INTEGER), "note" = %(note)s',
            "t.id = v.k_id", {"note": "done"})
        changed = sorted(row[0] for row in conn.exec_driver_sql(sql, args).fetchall())
        stored = conn.execute(text("SELECT id, n, note FROM jobs ORDER BY id")).all()
    engine.dispose()
    assert changed == [1, 3]
    assert [tuple(row) for row in stored] == [(1, 10, "done"), (2, 0, None), (3, 30, "done")]


def test_only_a_sqlite_file_can_be_missing(tmp_path):
    assert SqliteDialect().missing_database(f"sqlite:///{tmp_path / 'none.db'}") == str(tmp_path / "none.db")
    assert SqliteDialect().missing_database("sqlite:///:memory:") is None
    (tmp_path / "there.db").touch()
    assert SqliteDialect().missing_database(f"sqlite:///{tmp_path / 'there.db'}") is None
    assert PostgresDialect().missing_database("postgresql://postgres@db/none") is None


def test_the_candle_store_is_the_repository_the_pipeline_depends_on(tmp_path):
    """Same methods, same signatures: the protocol is the store as the stages call it."""
    store = CandleStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.dispose()
    assert isinstance(store, MarketDataRepository)
    members = [name for name in vars(MarketDataRepository) if not name.startswith("_")]
    assert sorted(members) == ["complete_ended_bars", "count_candles", "read_candles", "replace_signals",
                               "write_candles", "write_indicators"]
    for name in members:
        assert inspect.signature(getattr(CandleStore, name)) == inspect.signature(getattr(MarketDataRepository, name))
