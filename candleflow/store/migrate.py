"""Schema migrations of the domain store database (Alembic, no alembic.ini needed).

``upgrade_schema(engine)`` brings a database to the newest revision. It is idempotent and safe to
call from several processes at once: the whole upgrade runs in one transaction (DDL is
transactional on Postgres and SQLite) that first takes a database-wide lock
(``StoreDialect.begin_migration``: Postgres ``pg_advisory_xact_lock``, SQLite ``BEGIN IMMEDIATE``);
a second caller waits for the first to commit, then finds the database at head and does nothing.

A database whose data tables were made by ``schema.metadata.create_all`` before migrations existed
(candles, indicator_values and signals present, no version row) is stamped at revision 0001 and
then upgraded.

Revisions live in ``candleflow/store/migrations/versions``; the version is kept in the table
``candleflow_alembic_version`` (not ``alembic_version``, so the store can share a Postgres database
with other Alembic users such as Dagster's storage).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from candleflow.store.dialects import dialect_of

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "candleflow_alembic_version"
BASE_REVISION = "0001"
BASE_TABLES = ("candles", "indicator_values", "signals")
TRACKING_REVISION = "0002"
TRACKING_TABLES = ("candle_ingest_task_tracking", "derived_bars_task_tracking", "indicators_task_tracking",
                   "scans_task_tracking")


class MigrationError(RuntimeError):
    """The database is in a state the migrations cannot continue from (e.g. half of the tables)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code; ``connection`` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated (nor stamped)."""
    with engine.connect() as conn:
        return _current(conn)


def _current(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest). Idempotent, concurrency-safe."""
    with _locked_transaction(engine) as conn:
        _stamp_if_created_without_migrations(conn)
        command.upgrade(alembic_config(conn), revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Go back to ``revision`` ("0001" drops the tracking tables, "base" drops everything)."""
    with _locked_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def stamp_schema(engine: Engine, revision: str) -> None:
    with _locked_transaction(engine) as conn:
        command.stamp(alembic_config(conn), revision)


class _locked_transaction:
    """One transaction holding the database-wide migration lock; committed on success."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        self.conn = self.engine.connect()
        try:
            dialect_of(self.conn).begin_migration(self.conn)
        except BaseException:
            self.conn.close()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.conn is not None
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def _stamp_if_created_without_migrations(conn: Connection) -> None:
    if _current(conn) is not None:
        return
    existing = set(inspect(conn).get_table_names())
    base = [t for t in BASE_TABLES if t in existing]
    tracking = [t for t in TRACKING_TABLES if t in existing]
    if not base and not tracking:
        return  # an empty database: migrate from scratch
    if len(base) != len(BASE_TABLES) or (tracking and len(tracking) != len(TRACKING_TABLES)):
        raise MigrationError(
            f"the database holds some of the store tables ({', '.join(base + tracking)}) but no "
            f"{VERSION_TABLE} row; it was not made by candleflow's schema code. Fix it by hand, "
            "then stamp it (candleflow.store.migrate.stamp_schema)")
    command.stamp(alembic_config(conn), TRACKING_REVISION if tracking else BASE_REVISION)
