"""Bulk upsert and bulk read of DataFrames, and raw SQL with ``%(name)s`` parameters, on the
connection's database (each engine's way in ``candleflow.store.dialects``).

On every engine the update is skipped for a row whose values are unchanged, so re-writing stored
rows costs a read, not a new row version. Everything runs inside the caller's transaction, so a
failure leaves the target table as it was.
"""

from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table

from candleflow.store.dialects import dialect_of
from candleflow.store.dialects.base import quoted


class StoreWriteError(RuntimeError):
    """The database refused a write; the transaction was rolled back and nothing was written."""


def upsert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert or update every row of ``frame`` (columns named as in ``table``) into ``table``."""
    if frame.empty:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    if frame.duplicated(keys).any():
        # Postgres refuses a statement that touches one key twice (CardinalityViolation).
        raise ValueError(f"{table.name}: batch holds the same primary key twice")
    try:
        dialect_of(conn).upsert(conn, table, frame)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise StoreWriteError(f"writing {len(frame)} rows to {table.name} failed: {exc}") from exc
    return len(frame)


def read_frame(conn: Connection, sql: str, params: Mapping[str, Any],
               dtypes: Mapping[str, object]) -> pd.DataFrame:
    """Run ``sql`` (``%(name)s`` parameters) and return its rows as a DataFrame with ``dtypes``."""
    return dialect_of(conn).read_frame(conn, sql, params, dtypes)


def execute_sql(conn: Connection, sql: str, params: Mapping[str, Any]):
    """Run ``sql`` (``%(name)s`` parameters) on the raw driver cursor; returns the cursor."""
    return dialect_of(conn).execute(conn, sql, params)


def select_list(columns) -> str:
    return quoted(columns)


def in_clause(column: str, values, params: dict, prefix: str) -> str:
    """``"column" IN (%(prefix0)s, ...)``, adding one named parameter per value to ``params``."""
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f"%({prefix}{i})s")
    if not names:
        return "1 = 0"
    return f'"{column}" IN ({", ".join(names)})'
