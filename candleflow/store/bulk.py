"""Bulk upsert and bulk read, one implementation per database.

SQLite: ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE`` on the raw sqlite3 cursor (the field
notes measured 265-339k rows/s, twice SQLAlchemy's executemany). Postgres: ``COPY`` of CSV written
by Arrow (4-5 times faster than pandas' ``to_csv``, and exact: shortest round-trip floats) into a
temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``. On both, the
update is skipped for a row whose values are unchanged, so re-writing stored rows costs a read, not
a new row version. Both run inside the caller's transaction, so a failure leaves the target table
as it was.
"""

import io
import re

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Table


def _quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _conflict_clause(table: Table, columns: list[str], distinct: str) -> str:
    """Upsert clause; ``distinct`` is the dialect's null-safe "differs" operator for row values."""
    keys = [c.name for c in table.primary_key.columns]
    updates = [c for c in columns if c not in keys]
    if not updates:
        return f"ON CONFLICT ({_quoted(keys)}) DO NOTHING"
    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in updates)
    stored = ", ".join(f'"{table.name}"."{c}"' for c in updates)
    given = ", ".join(f'excluded."{c}"' for c in updates)
    return (f"ON CONFLICT ({_quoted(keys)}) DO UPDATE SET {assignments} "
            f"WHERE ({stored}) {distinct} ({given})")


class StoreWriteError(RuntimeError):
    """The database refused a write; the transaction was rolled back and nothing was written."""


def upsert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert or update every row of ``frame`` (columns named as in ``table``) into ``table``."""
    try:
        return _upsert(conn, table, frame)
    except _driver_errors(conn) as exc:
        raise StoreWriteError(f"writing {len(frame)} rows to {table.name} failed: {exc}") from exc


def _driver_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    return (conn.dialect.loaded_dbapi.Error,)


def _upsert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    if frame.duplicated(keys).any():
        # Postgres refuses a statement that touches one key twice (CardinalityViolation).
        raise ValueError(f"{table.name}: batch holds the same primary key twice")
    columns = list(frame.columns)
    if conn.dialect.name == "postgresql":
        return _upsert_postgres(conn, table, frame, columns)
    return _upsert_sqlite(conn, table, frame, columns)


def _upsert_sqlite(conn: Connection, table: Table, frame: pd.DataFrame, columns: list[str]) -> int:
    placeholders = ", ".join("?" for _ in columns)
    sql = (f'INSERT INTO "{table.name}" ({_quoted(columns)}) VALUES ({placeholders}) '
           f"{_conflict_clause(table, columns, 'IS NOT')}")
    rows = zip(*(frame[c].tolist() for c in columns))
    cursor = conn.connection.driver_connection.cursor()
    cursor.executemany(sql, rows)
    return len(frame)


def _upsert_postgres(conn: Connection, table: Table, frame: pd.DataFrame, columns: list[str]) -> int:
    stage = f"stage_{table.name}"
    buffer = pa.BufferReader(_arrow_csv(frame))
    cursor = conn.connection.driver_connection.cursor()
    cursor.execute(f'DROP TABLE IF EXISTS "{stage}"')
    cursor.execute(f'CREATE TEMP TABLE "{stage}" (LIKE "{table.name}") ON COMMIT DROP')
    cursor.copy_expert(f'COPY "{stage}" ({_quoted(columns)}) FROM STDIN WITH (FORMAT csv)', buffer)
    cursor.execute(
        f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT {_quoted(columns)} FROM "{stage}" '
        f"{_conflict_clause(table, columns, 'IS DISTINCT FROM')}"
    )
    return len(frame)


def _arrow_csv(frame: pd.DataFrame) -> pa.Buffer:
    """``frame`` as header-less CSV.

    The table's columns are combined into one chunk each first: a pandas string column made by
    concatenating frames (one of them empty) becomes a chunked Arrow column, and for a large-string
    column whose first chunk is empty ``write_csv`` (pyarrow 26) writes raw buffer bytes instead of
    the values.
    """
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def read_frame(conn: Connection, sql: str, params: dict, dtypes: dict[str, object]) -> pd.DataFrame:
    """Run ``sql`` (named ``%(param)s`` style parameters) and return its rows as a DataFrame."""
    columns = list(dtypes)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        query = cursor.mogrify(sql, params).decode()
        buffer = io.StringIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
        buffer.seek(0)
        if not buffer.getvalue():
            return _empty(dtypes)
        frame = pd.read_csv(buffer, header=None, names=columns, dtype=_csv_dtypes(dtypes),
                            keep_default_na=False, na_values=[""])
        return _with_booleans(frame, dtypes)
    rows = execute_sql(conn, sql, params).fetchall()
    if not rows:
        return _empty(dtypes)
    return pd.DataFrame.from_records(rows, columns=columns).astype(dtypes)


def execute_sql(conn: Connection, sql: str, params: dict):
    """Run ``sql`` with ``%(name)s`` parameters on the raw driver cursor of either database."""
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "sqlite":
        sql = re.sub(r"%\((\w+)\)s", r":\1", sql)
    cursor.execute(sql, params)
    return cursor


def select_list(columns) -> str:
    return _quoted(columns)


def _csv_dtypes(dtypes: dict[str, object]) -> dict[str, object]:
    return {c: (str if t is bool else t) for c, t in dtypes.items()}


def _with_booleans(frame: pd.DataFrame, dtypes: dict[str, object]) -> pd.DataFrame:
    for column, dtype in dtypes.items():
        if dtype is bool:
            frame[column] = frame[column].isin(["t", "true", "True"])
    return frame.astype(dtypes)


def _empty(dtypes: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def in_clause(column: str, values, params: dict, prefix: str) -> str:
    """``"column" IN (%(prefix0)s, ...)``, adding one named parameter per value to ``params``."""
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f"%({prefix}{i})s")
    if not names:
        return "1 = 0"
    return f'"{column}" IN ({", ".join(names)})'
