"""Postgres (psycopg2): the production store.

Upsert: ``COPY`` of CSV written by Arrow (4-5 times faster than pandas' ``to_csv``, and exact:
shortest round-trip floats) into a temporary staging table, then one ``INSERT ... SELECT ... ON
CONFLICT DO UPDATE``. Bulk read: ``COPY (query) TO STDOUT`` parsed by pandas. A large write is split
over two connections, so that the server's upsert work runs on two cores (docs/performance.md, "Where the time went").
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert

from candleflow.store.dialects.base import StoreDialect, empty_frame, on_conflict_update, quoted
from candleflow.store.urls import masked_url

#: pg_advisory_xact_lock key of schema migrations: any constant bigint no other code of this database uses.
ADVISORY_LOCK_KEY = 0x63666C6F77_0001  # "cflow" + 1


class PostgresDialect(StoreDialect):
    name = "postgresql"
    # SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3, which dagster-postgres 0.29 cannot
    # use; candleflow pins psycopg2 for both, so the driver is made explicit.
    url_prefixes = ("postgresql+psycopg2://", "postgresql://", "postgres://")
    url_hint = "postgresql://..."
    positional_marker = "%s"
    parallel_writers = 2

    def create_engine(self, url: str) -> Engine:
        _refuse_plain_at_sign(url)
        return create_engine(url, pool_pre_ping=True)

    def begin_migration(self, conn: Connection) -> None:
        # Postgres DDL is transactional: a second caller waits for the first to commit.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})

    def insert_skipping_existing(self, table: Table, keys: Sequence[str]) -> Insert:
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def upsert(self, conn: Connection, table: Table, frame: pd.DataFrame) -> None:
        columns = list(frame.columns)
        stage = f"stage_{table.name}"
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(f'DROP TABLE IF EXISTS "{stage}"')
        cursor.execute(f'CREATE TEMP TABLE "{stage}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP')
        cursor.copy_expert(f'COPY "{stage}" ({quoted(columns)}) FROM STDIN WITH (FORMAT csv)',
                           pa.BufferReader(_arrow_csv(frame)))
        cursor.execute(
            f'INSERT INTO "{table.name}" ({quoted(columns)}) SELECT {quoted(columns)} FROM "{stage}" '
            f"{on_conflict_update(table, columns, 'IS DISTINCT FROM')}"
        )

    def read_frame(self, conn: Connection, sql: str, params: Mapping[str, Any],
                   dtypes: Mapping[str, object]) -> pd.DataFrame:
        cursor = conn.connection.driver_connection.cursor()
        query = cursor.mogrify(*self.driver_statement(sql, params)).decode()
        buffer = io.StringIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
        buffer.seek(0)
        if not buffer.getvalue():
            return empty_frame(dtypes)
        csv_dtypes = {c: (str if t is bool else t) for c, t in dtypes.items()}
        frame = pd.read_csv(buffer, header=None, names=list(dtypes), dtype=csv_dtypes,
                            keep_default_na=False, na_values=[""])
        for column, dtype in dtypes.items():
            if dtype is bool:
                frame[column] = frame[column].isin(["t", "true", "True"])
        return frame.astype(dtypes)


def _refuse_plain_at_sign(url: str) -> None:
    """A plain "@" in the password makes the rest of the password the host name, which the driver
    then prints in its error ("could not translate host name ...")."""
    if "@" in (make_url(url).host or ""):
        raise ValueError(f"malformed store URL {masked_url(url)!r}: "
                         "write an '@' of the user name or password as %40")


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
