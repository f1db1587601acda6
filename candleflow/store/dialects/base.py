"""``StoreDialect``: what one database engine does its own way for the domain store and the task
tracking tables. Everything else in ``candleflow.store`` and ``candleflow.tracking`` is written
once, against this interface.

candleflow's raw SQL names its parameters ``%(name)s``; ``driver_statement`` turns them into the
driver's positional ones. The abstract methods are what a backend must write; the others are
standard SQL (both SQLite and Postgres run it as it is) that a backend overrides only where it
lacks it: ``update_from_values`` on an engine without ``UPDATE ... FROM`` or ``RETURNING``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pandas as pd
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.sql.dml import Insert

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


class StoreDialect(ABC):
    #: The SQLAlchemy dialect name (``engine.dialect.name``) this class serves.
    name: ClassVar[str]
    #: The driver's positional parameter (DBAPI paramstyle "qmark": ``?``, "format": ``%s``).
    positional_marker: ClassVar[str]
    #: The URL beginnings served; the first is the one a URL is normalized to (its driver).
    url_prefixes: ClassVar[tuple[str, ...]]
    #: How the URL is written in "use ... or ..." of an unsupported-URL error.
    url_hint: ClassVar[str]
    #: Connections a large write is split over (``candleflow.store.store.PARALLEL_WRITE_ROWS``).
    parallel_writers: ClassVar[int] = 1
    #: Whether datetimes are stored without a time zone (as naive UTC): ``UTCDateTime``.
    naive_datetimes: ClassVar[bool] = False
    #: Alembic's batch mode (ALTER TABLE by copying the table), for engines with a weak ALTER.
    alembic_batch_mode: ClassVar[bool] = False

    # -- connecting -----------------------------------------------------------------------------

    def serves(self, url: str) -> bool:
        return url.startswith(self.url_prefixes)

    def normalize_url(self, url: str) -> str:
        """``url`` (which this dialect ``serves``) with the driver candleflow uses."""
        prefix = next(p for p in self.url_prefixes if url.startswith(p))
        return self.url_prefixes[0] + url.removeprefix(prefix)

    @abstractmethod
    def create_engine(self, url: str) -> Engine:
        """An engine on the normalized ``url``, set up as the store needs it."""

    def missing_database(self, url: str) -> str | None:
        """What a read-only tool would create by connecting to ``url`` (a database file that does
        not exist yet), or None when connecting creates nothing."""
        return None

    @abstractmethod
    def begin_migration(self, conn: Connection) -> None:
        """Begin the migration transaction on ``conn``, holding a database-wide lock that makes a
        second migrating process wait until this one commits."""

    # -- statements -----------------------------------------------------------------------------

    def driver_statement(self, sql: str, params: Mapping[str, Any]) -> tuple[str, tuple]:
        """``sql`` (``%(name)s`` parameters) and ``params`` as the driver reads them: positional
        (SQLite looks a named parameter up by a linear search, which makes a statement of thousands
        of them, a tracking UPDATE of 4,000 rows, quadratic to prepare)."""
        names: list[str] = []

        def positional(match: re.Match) -> str:
            names.append(match.group(1))
            return self.positional_marker

        return _NAMED_PARAMETER.sub(positional, sql), tuple(params[name] for name in names)

    def execute(self, conn: Connection, sql: str, params: Mapping[str, Any]):
        """Run ``sql`` (``%(name)s`` parameters) on the raw driver cursor; returns the cursor."""
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(*self.driver_statement(sql, params))
        return cursor

    @abstractmethod
    def insert_skipping_existing(self, table: Table, keys: Sequence[str]) -> Insert:
        """An INSERT into ``table`` that leaves a row whose ``keys`` already exist as it is."""

    @abstractmethod
    def upsert(self, conn: Connection, table: Table, frame: pd.DataFrame) -> None:
        """Insert or update every row of ``frame`` (non-empty, unique keys) in the caller's
        transaction, skipping the update of a row whose values are unchanged."""

    def read_frame(self, conn: Connection, sql: str, params: Mapping[str, Any],
                   dtypes: Mapping[str, object]) -> pd.DataFrame:
        """The rows of ``sql`` as a DataFrame with ``dtypes`` (one column each, in order)."""
        rows = self.execute(conn, sql, params).fetchall()
        if not rows:
            return empty_frame(dtypes)
        return pd.DataFrame.from_records(rows, columns=list(dtypes)).astype(dtypes)

    def update_from_values(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                           assignments: str, where: str, params: Mapping[str, Any]) -> tuple[str, tuple]:
        """One UPDATE of ``table`` (as ``t``) joined to ``rows`` (as ``v``, with ``columns``)
        returning the ids it changed, as driver SQL and its parameters. ``assignments`` and
        ``where`` may name ``t``, ``v`` and the ``%(name)s`` of ``params``."""
        update, shared = self.driver_statement(
            f"UPDATE {table} AS t SET {assignments} FROM v WHERE {where} RETURNING id", params)
        row = "(" + ", ".join([self.positional_marker] * len(columns)) + ")"
        sql = f"WITH v({', '.join(columns)}) AS (VALUES {', '.join([row] * len(rows))}) {update}"
        return sql, tuple(value for values in rows for value in values) + shared


def quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def on_conflict_update(table: Table, columns: Sequence[str], differs: str) -> str:
    """The ``ON CONFLICT`` clause of an upsert of ``columns`` into ``table``, for the engines that
    speak it; ``differs`` is the engine's null-safe "not equal" operator for row values."""
    keys = [c.name for c in table.primary_key.columns]
    updates = [c for c in columns if c not in keys]
    if not updates:
        return f"ON CONFLICT ({quoted(keys)}) DO NOTHING"
    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in updates)
    stored = ", ".join(f'"{table.name}"."{c}"' for c in updates)
    given = ", ".join(f'excluded."{c}"' for c in updates)
    return (f"ON CONFLICT ({quoted(keys)}) DO UPDATE SET {assignments} "
            f"WHERE ({stored}) {differs} ({given})")


def empty_frame(dtypes: Mapping[str, object]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
