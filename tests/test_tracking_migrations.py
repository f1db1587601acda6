"""Alembic migrations of the domain store on empty, current and pre-migration databases."""

import multiprocessing

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from candleflow.store import schema
from candleflow.store.migrate import (MigrationError, current_revision, downgrade_schema, head_revision,
                                      upgrade_schema)
from candleflow.store.store import make_engine
from candleflow.tracking.models import tracking_metadata

DATA_TABLES = {"candles", "indicator_values", "signals"}
TRACKING_TABLES = {"candle_ingest_task_tracking", "derived_bars_task_tracking", "indicators_task_tracking",
                   "scans_task_tracking", "run_chunks"}
VERSION_TABLE = "candleflow_alembic_version"


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _insert_candle(engine) -> None:
    with engine.begin() as conn:
        conn.execute(schema.candles.insert().values(symbol="AAPL", interval="1d", bar_start=1709856000,
                                                    open=1.0, high=2.0, low=0.5, close=1.5, volume=10.0,
                                                    minutes=390, complete=True))


def _candle_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM candles")).scalar_one()


def test_upgrade_empty_database_creates_everything(engine):
    assert current_revision(engine) is None
    upgrade_schema(engine)
    assert current_revision(engine) == "0005" == head_revision()
    assert _tables(engine) == DATA_TABLES | TRACKING_TABLES | {VERSION_TABLE}
    inspector = inspect(engine)
    for domain in ("candle_ingest", "derived_bars", "indicators", "scans"):
        table = f"{domain}_task_tracking"
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table)}
        assert indexes[f"idx_{domain}_task_status"] == ["status"]
        assert indexes[f"idx_{domain}_task_dates"] == ["created_at", "completed_at"]
        assert indexes[f"idx_{domain}_task_run"] == ["run_id"]
        uniques = {u["name"]: u["column_names"] for u in inspector.get_unique_constraints(table)}
        assert uniques[f"uq_{domain}_task_key"] == ["root_run_id", "step_key", "partition_key"]
        assert inspector.get_pk_constraint(table)["constrained_columns"] == ["id"]
    assert inspector.get_pk_constraint("candles")["constrained_columns"] == ["symbol", "interval", "bar_start"]
    assert inspector.get_pk_constraint("signals")["constrained_columns"] == ["scan", "symbol", "interval",
                                                                             "bar_start"]
    if engine.dialect.name == "postgresql":
        columns = {c["name"]: c for c in inspector.get_columns("candles")}
        assert columns["bar_start"]["comment"] == "bar start, Unix epoch seconds UTC"
        assert str(columns["open"]["type"]) == "DOUBLE PRECISION"
        tracking = {c["name"]: c for c in inspector.get_columns("scans_task_tracking")}
        assert tracking["created_at"]["type"].timezone is True


def test_migrated_schema_matches_the_models(engine):
    """Autogenerate finds nothing to change: schema.py, models.py and the revisions agree."""
    upgrade_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "version_table": VERSION_TABLE})
        diff = compare_metadata(context, [schema.metadata, tracking_metadata])
    assert diff == []


def test_upgrade_twice_is_a_no_op(engine):
    upgrade_schema(engine)
    _insert_candle(engine)
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    assert _candle_count(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT COUNT(*) FROM {VERSION_TABLE}")).scalar_one() == 1


def test_database_made_by_create_all_is_stamped(engine):
    schema.metadata.create_all(engine)  # what CandleStore.create_schema did before migrations
    _insert_candle(engine)
    assert current_revision(engine) is None
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    assert _tables(engine) >= DATA_TABLES | TRACKING_TABLES
    assert _candle_count(engine) == 1


def test_half_made_database_is_refused(engine):
    schema.candles.create(engine)
    with pytest.raises(MigrationError, match="candles"):
        upgrade_schema(engine)
    assert current_revision(engine) is None


def test_downgrade_0002_removes_the_tracking_tables(engine):
    upgrade_schema(engine)
    _insert_candle(engine)
    downgrade_schema(engine, "0001")
    assert current_revision(engine) == "0001"
    assert _tables(engine) == DATA_TABLES | {VERSION_TABLE}
    assert _candle_count(engine) == 1
    upgrade_schema(engine)
    assert _tables(engine) == DATA_TABLES | TRACKING_TABLES | {VERSION_TABLE}


def _upgrade_in_child(url: str, barrier) -> None:
    engine = make_engine(url)
    barrier.wait()
    upgrade_schema(engine)
    engine.dispose()


def test_concurrent_upgrades_from_several_processes(store_url):
    """Four processes migrate one empty database at the same moment: all succeed, once."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    children = [ctx.Process(target=_upgrade_in_child, args=(store_url, barrier)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [c.exitcode for c in children] == [0, 0, 0, 0]
    engine = make_engine(store_url)
    try:
        assert current_revision(engine) == head_revision()
        assert _tables(engine) == DATA_TABLES | TRACKING_TABLES | {VERSION_TABLE}
    finally:
        engine.dispose()
