"""CandleStore: the domain store's read and write API."""

import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, Table, create_engine, event, func, select, text

from candleflow.market.frames import CANDLE_COLUMNS, CANDLE_DTYPES, as_candle_frame
from candleflow.store import schema
from candleflow.store.bulk import execute_sql, in_clause, read_frame, select_list, upsert_frame

INDICATOR_DTYPES = {"symbol": "str", "interval": "str", "bar_start": "int64", "name": "str",
                    "value": "float64"}
SIGNAL_DTYPES = {"scan": "str", "symbol": "str", "interval": "str", "bar_start": "int64",
                 "formula": "str", "term_values": "str"}
#: A Postgres write of at least this many rows is split by symbol over ``PARALLEL_WRITERS``
#: connections, so that the server's upsert work runs on several cores instead of one (README,
#: "Performance"). Each part is its own transaction: such a write lands whole per symbol.
PARALLEL_WRITE_ROWS = 200_000
PARALLEL_WRITERS = 2


def normalize_url(url: str) -> str:
    """Database URL with the driver candleflow uses.

    SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3, which dagster-postgres 0.29 cannot
    use; candleflow pins psycopg2 for both, so the scheme is made explicit here.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Busy timeout first, so that the statements after it wait for a lock instead of failing.

    WAL (persistent once set) lets readers work beside the writer. Switching to it needs a moment
    alone with the file; if another connection holds a lock right then, it is that connection's
    job (or the next one's): WAL is a speed-up, not a requirement.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql+psycopg2://"):
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://...")


class CandleStore:
    """Candles (raw and derived), indicator values and scan signals, keyed as README.md documents.

    Every write is one transaction: it lands whole or not at all, and writing the same rows twice
    leaves the same rows.
    """

    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Create or upgrade every domain table with the Alembic migrations (store/migrations)."""
        from candleflow.store.migrate import upgrade_schema  # lazy: importing alembic takes ~0.3 s

        upgrade_schema(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writes -------------------------------------------------------------------------------

    def write_candles(self, frame: pd.DataFrame, interval: str) -> int:
        return self._upsert(schema.candles, as_candle_frame(frame).assign(interval=interval))

    def write_indicators(self, frame: pd.DataFrame) -> int:
        return self._upsert(schema.indicator_values, frame[list(INDICATOR_DTYPES)])

    def _upsert(self, table: Table, frame: pd.DataFrame) -> int:
        if self.dialect != "postgresql" or len(frame) < PARALLEL_WRITE_ROWS:
            return self._upsert_in_one_transaction(table, frame)
        writer = pd.factorize(frame["symbol"])[0] % PARALLEL_WRITERS
        with ThreadPoolExecutor(PARALLEL_WRITERS) as pool:
            parts = [pool.submit(self._upsert_in_one_transaction, table, frame[writer == i])
                     for i in range(PARALLEL_WRITERS)]
        return sum(part.result() for part in parts)  # every part has ended; raises the first error

    def _upsert_in_one_transaction(self, table: Table, frame: pd.DataFrame) -> int:
        with self.engine.begin() as conn:
            return upsert_frame(conn, table, frame)

    def replace_signals(self, frame: pd.DataFrame, scans: Sequence[str], symbols: Sequence[str],
                        since: int) -> int:
        """Replace the signals of ``scans`` x ``symbols`` at bars >= ``since`` with ``frame``.

        Replacing (not only upserting) keeps a re-run idempotent when a symbol stops matching.
        """
        params: dict = {"since": int(since)}
        where = (f"{in_clause('scan', scans, params, 'c')} AND "
                 f"{in_clause('symbol', symbols, params, 's')} AND bar_start >= %(since)s")
        with self.engine.begin() as conn:
            execute_sql(conn, f"DELETE FROM signals WHERE {where}", params)
            return upsert_frame(conn, schema.signals, frame[list(SIGNAL_DTYPES)])

    # -- reads --------------------------------------------------------------------------------

    def _read(self, sql: str, params: dict, dtypes: dict) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return read_frame(conn, sql, params, dtypes)

    def read_candles(self, symbols: Sequence[str], interval: str, start: int | None = None,
                     end: int | None = None) -> pd.DataFrame:
        """Candles of ``interval`` for ``symbols`` with start <= bar_start < end, as a candle frame."""
        where, params = _symbols_in_window(symbols, interval, start, end)
        sql = f"SELECT {select_list(CANDLE_COLUMNS)} FROM candles WHERE {where} ORDER BY symbol, bar_start"
        return self._read(sql, params, CANDLE_DTYPES)

    def count_candles(self, symbols: Sequence[str], interval: str, start: int | None = None,
                      end: int | None = None) -> dict[str, int]:
        """Stored candles per symbol, as ``read_candles`` would select them (symbols with none left out)."""
        where, params = _symbols_in_window(symbols, interval, start, end)
        sql = f"SELECT symbol, COUNT(*) FROM candles WHERE {where} GROUP BY symbol"
        with self.engine.connect() as conn:
            return dict(execute_sql(conn, sql, params).fetchall())

    def read_indicators(self, symbols: Sequence[str], interval: str, start: int | None = None,
                        end: int | None = None) -> pd.DataFrame:
        where, params = _symbols_in_window(symbols, interval, start, end)
        sql = (f"SELECT {select_list(INDICATOR_DTYPES)} FROM indicator_values WHERE {where} "
               "ORDER BY symbol, name, bar_start")
        return self._read(sql, params, INDICATOR_DTYPES)

    def read_signals(self, since: int | None = None) -> pd.DataFrame:
        """Stored signals (newest bar first), with ``term_values`` decoded from JSON."""
        params: dict = {}
        where = "" if since is None else "WHERE bar_start >= %(since)s"
        if since is not None:
            params["since"] = int(since)
        sql = (f"SELECT {select_list(SIGNAL_DTYPES)} FROM signals {where} ORDER BY bar_start DESC, scan, symbol")
        frame = self._read(sql, params, SIGNAL_DTYPES)
        frame["term_values"] = frame["term_values"].map(json.loads)
        return frame

    def count_rows(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(schema.metadata.tables[table])).scalar_one()

    def span(self, interval: str) -> tuple[int | None, int | None]:
        """First and last bar_start stored for ``interval``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text('SELECT MIN(bar_start), MAX(bar_start) FROM candles WHERE "interval" = :i'),
                {"i": interval},
            ).one()
        return row[0], row[1]


def _symbols_in_window(symbols: Sequence[str], interval: str, start: int | None,
                       end: int | None) -> tuple[str, dict]:
    """WHERE clause (and its parameters) of the rows of ``symbols`` at ``interval`` with
    start <= bar_start < end, in the candles or the indicator_values table."""
    params: dict = {"interval": interval}
    where = f"\"interval\" = %(interval)s AND {in_clause('symbol', symbols, params, 's')}"
    if start is not None:
        params["start"] = int(start)
        where += " AND bar_start >= %(start)s"
    if end is not None:
        params["end"] = int(end)
        where += " AND bar_start < %(end)s"
    return where, params
