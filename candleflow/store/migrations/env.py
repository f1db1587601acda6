"""Alembic environment of the domain store database.

Used programmatically by ``candleflow.store.migrate`` (no alembic.ini): the caller puts an open
SQLAlchemy ``Connection`` in ``config.attributes["connection"]``; everything then runs inside that
connection's transaction, which the caller commits. From the alembic command line, pass
``-x url=postgresql+psycopg2://...`` (or set ``sqlalchemy.url``) instead.
"""

from alembic import context
from sqlalchemy import create_engine

from candleflow.store.dialects import dialect_of
from candleflow.store.schema import metadata as store_metadata
from candleflow.tracking.models import tracking_metadata

VERSION_TABLE = "candleflow_alembic_version"

config = context.config
target_metadata = [store_metadata, tracking_metadata]


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=dialect_of(connection).alembic_batch_mode,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, version_table=VERSION_TABLE,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=... or use candleflow.store.migrate.upgrade_schema")
    from candleflow.store.store import normalize_url

    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
