"""The database engines the store runs on, one module each, and the choice between them.

A new backend is one module here with a ``StoreDialect`` subclass, added to ``DIALECTS``.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect

from candleflow.store.dialects.base import StoreDialect
from candleflow.store.dialects.postgres import PostgresDialect
from candleflow.store.dialects.sqlite import SqliteDialect

DIALECTS: tuple[StoreDialect, ...] = (SqliteDialect(), PostgresDialect())
_BY_NAME = {dialect.name: dialect for dialect in DIALECTS}


def dialect_of(bind: Engine | Connection | Dialect) -> StoreDialect:
    """The store dialect of an engine, a connection or a SQLAlchemy dialect."""
    name = getattr(bind, "dialect", bind).name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no store dialect for database {name!r}: expected one of "
                         f"{', '.join(_BY_NAME)}") from None


def dialect_for_url(url: str) -> StoreDialect | None:
    """The dialect serving ``url``, or None when no dialect does."""
    return next((dialect for dialect in DIALECTS if dialect.serves(url)), None)


def url_hints() -> str:
    """How the supported URLs are written: "sqlite:///PATH or postgresql://..."."""
    return " or ".join(dialect.url_hint for dialect in DIALECTS)


__all__ = ["DIALECTS", "StoreDialect", "dialect_for_url", "dialect_of", "url_hints"]
