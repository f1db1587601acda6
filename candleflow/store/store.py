"""CandleStore: the domain store's read and write API."""

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from sqlalchemy import Engine, Table, bindparam, func, select, text, update

from candleflow.market.bars import bar_window_ends
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import CANDLE_COLUMNS, CANDLE_DTYPES, as_candle_frame
from candleflow.store import schema
from candleflow.store.bulk import execute_sql, in_clause, read_frame, select_list, upsert_frame
from candleflow.store.dialects import StoreDialect, dialect_for_url, url_hints
from candleflow.store.urls import masked_url

INDICATOR_DTYPES = {"symbol": "str", "interval": "str", "bar_start": "int64", "name": "str",
                    "value": "float64"}
SIGNAL_DTYPES = {"scan": "str", "symbol": "str", "interval": "str", "bar_start": "int64",
                 "formula": "str", "term_values": "str"}
OPEN_BAR_DTYPES = {"symbol": "str", "interval": "str", "bar_start": "int64"}
#: A write of at least this many rows is split by symbol over the dialect's ``parallel_writers``
#: connections (Postgres: 2), so that the server's upsert work runs on several cores instead of
#: one (docs/performance.md, "Where the time went"). Each part is its own transaction: such a write lands whole per symbol.
PARALLEL_WRITE_ROWS = 200_000


def normalize_url(url: str) -> str:
    """Database URL with the driver candleflow uses (a URL no dialect serves stays as it is)."""
    dialect = dialect_for_url(url)
    return url if dialect is None else dialect.normalize_url(url)


def store_dialect(url: str) -> StoreDialect:
    """The dialect serving ``url``; a ValueError naming the scheme (never the password) if none does."""
    dialect = dialect_for_url(url)
    if dialect is None:
        raise ValueError(f"unsupported store URL {_scheme_and_url(url)}: use {url_hints()}")
    return dialect


def make_engine(url: str) -> Engine:
    dialect = store_dialect(url)
    return dialect.create_engine(dialect.normalize_url(url))


def _scheme_and_url(url: str) -> str:
    if "://" not in url:
        return repr(masked_url(url))
    return f"scheme {url.split('://', 1)[0]!r} in {masked_url(url)!r}"


class CandleStore:
    """Candles (raw and derived), indicator values and scan signals, keyed as docs/tables.md documents:
    the ``MarketDataRepository`` the pipeline writes through, plus the reads, counts and deletes of
    the CLI, the charts and the tests, on the engine its URL names (``candleflow.store.dialects``).

    Every write is one transaction: it lands whole or not at all, and writing the same rows twice
    leaves the same rows.
    """

    def __init__(self, url: str):
        self.dialect = store_dialect(url)
        self.url = self.dialect.normalize_url(url)
        self.engine = self.dialect.create_engine(self.url)

    def create_schema(self) -> None:
        """Create or upgrade every domain table with the Alembic migrations (store/migrations)."""
        from candleflow.store.migrate import upgrade_schema  # lazy: importing alembic takes ~0.3 s

        upgrade_schema(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writes -------------------------------------------------------------------------------

    def write_candles(self, frame: pd.DataFrame, interval: str) -> int:
        rows = as_candle_frame(frame).assign(interval=interval)
        if "part" in frame:
            rows["part"] = frame["part"].to_numpy()
        return self._upsert(schema.candles, rows)

    def write_indicators(self, frame: pd.DataFrame) -> int:
        return self._upsert(schema.indicator_values, frame[list(INDICATOR_DTYPES)])

    def _upsert(self, table: Table, frame: pd.DataFrame) -> int:
        writers = self.dialect.parallel_writers
        if writers == 1 or len(frame) < PARALLEL_WRITE_ROWS:
            return self._upsert_in_one_transaction(table, frame)
        writer = pd.factorize(frame["symbol"])[0] % writers
        with ThreadPoolExecutor(writers) as pool:
            parts = [pool.submit(self._upsert_in_one_transaction, table, frame[writer == i])
                     for i in range(writers)]
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

    def delete_bars(self, symbol: str, intervals: Sequence[str], start: int, end: int) -> dict[str, int]:
        """Delete the candles, indicator values and signals of ``symbol`` at ``intervals`` with
        start <= bar_start < end, in one transaction; returns the rows deleted per table.

        For bars that should never have been stored (``candleflow bars delete``): given a base
        interval and the intervals built on it, nothing built from the deleted bars is left, so a
        later run derives it again.
        """
        deleted = dict.fromkeys(("candles", "indicator_values", "signals"), 0)
        with self.engine.begin() as conn:
            for interval in intervals:
                where, params = _symbols_in_window([symbol], interval, start, end)
                for table in deleted:
                    cursor = execute_sql(conn, f"DELETE FROM {table} WHERE {where}", params)
                    deleted[table] += cursor.rowcount
        return deleted

    def complete_ended_bars(self, symbols: Sequence[str], now: int,
                            calendar: ExchangeSessions) -> dict[str, int]:
        """Mark complete the stored bars of ``symbols`` still open whose window ended at or before
        ``now`` (docs/bars.md); returns how many per symbol (symbols with none left out).

        A run rewrites bars from its first new minute on, so a bar whose last minutes never came
        (no trade, or the session's last trade before its end) stays as the run that wrote it left
        it; this finishes it. The open bars are found through the partial index
        ``idx_candles_incomplete``, which holds only them.
        """
        params: dict = {"now": int(now)}
        where = f"NOT complete AND {in_clause('symbol', symbols, params, 's')} AND bar_start < %(now)s"
        sql = f"SELECT {select_list(OPEN_BAR_DTYPES)} FROM candles WHERE {where}"
        candles = schema.candles
        finish = update(candles).where(candles.c.symbol == bindparam("b_symbol"),
                                       candles.c.interval == bindparam("b_interval"),
                                       candles.c.bar_start == bindparam("b_start")).values(complete=True)
        with self.engine.begin() as conn:
            open_bars = read_frame(conn, sql, params, OPEN_BAR_DTYPES)
            if open_bars.empty:
                return {}
            ended = open_bars[bar_window_ends(open_bars, calendar) <= now]
            if not ended.empty:
                conn.execute(finish, [{"b_symbol": s, "b_interval": i, "b_start": t}
                                      for s, i, t in ended.itertuples(index=False)])
        return ended["symbol"].value_counts().to_dict()


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

