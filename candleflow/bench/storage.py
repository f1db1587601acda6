"""Workload "storage": does the ``candles`` table keep its speed as history grows?

A fresh store (SQLite file, or a fresh Postgres database) is filled session by session with
synthetic 1m bars of N symbols through ``CandleStore.write_candles``. When it holds 0, 20 and 60
sessions (``--held``), the next session is timed: its write (new rows), a read of that session for
every symbol (what derived bars and indicators read), and a read of one symbol's whole history
(a chart, a per-symbol backfill); then bytes per stored bar are taken from the database
(SQLite: the file and its WAL; Postgres: ``pg_total_relation_size('candles')``, table and indexes).
"""

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import text

from candleflow.bench.universe_day import bench_symbols, recreate_databases
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.synthetic import synthetic_minutes
from candleflow.store import CandleStore

DATABASE = "candleflow_bench_storage"


def storage(symbols: int, held: list[int], backends: list[str]) -> dict:
    calendar = ExchangeSessions()
    latest = calendar.last_closed_session(datetime.now(UTC))
    sessions = calendar.sessions_ending(latest, max(held) + 1)
    universe = bench_symbols(symbols)
    report = {"workload": "storage", "symbols": symbols, "backends": {}}
    for backend in backends:
        with TemporaryDirectory(prefix="candleflow-storage-") as folder:
            store, size_of = _fresh_store(backend, Path(folder))
            points, written = [], 0
            for index in range(len(sessions)):
                frame = synthetic_minutes(universe, sessions.iloc[index:index + 1], seed=7, calendar=calendar)
                if index in held:
                    points.append({"sessions_held": index, "rows_held": written,
                                   **_timed_session(store, frame, universe), "bytes_per_bar_held":
                                   round(size_of(store) / written, 1) if written else None})
                else:
                    store.write_candles(frame, "1m")
                written += len(frame)
            points[-1]["bytes_per_bar_after"] = round(size_of(store) / written, 1)
            store.dispose()
            if backend == "postgres":
                recreate_databases(DATABASE)
        report["backends"][backend] = points
    return report


def _timed_session(store: CandleStore, frame, universe: list[str]) -> dict:
    start, end = int(frame["bar_start"].min()), int(frame["bar_start"].max()) + 60
    started = time.perf_counter()
    store.write_candles(frame, "1m")
    wrote = time.perf_counter() - started
    started = time.perf_counter()
    session = store.read_candles(universe, "1m", start, end)
    read = time.perf_counter() - started
    started = time.perf_counter()
    history = store.read_candles(universe[:1], "1m")
    one = time.perf_counter() - started
    return {"write_seconds": round(wrote, 3), "write_rows_per_second": round(len(frame) / wrote),
            "read_session_seconds": round(read, 3), "read_rows_per_second": round(len(session) / read),
            "read_one_symbol_history_seconds": round(one, 4), "one_symbol_rows": len(history)}


def _fresh_store(backend: str, folder: Path):
    if backend == "postgres":
        recreate_databases(DATABASE)
        store = CandleStore(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}")
        store.create_schema()

        def size(store: CandleStore) -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(text("SELECT pg_total_relation_size('candles')")).scalar_one())
        return store, size
    path = folder / "store.db"
    store = CandleStore(f"sqlite:///{path}")
    store.create_schema()

    def size(store: CandleStore) -> int:
        with store.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())
    return store, size
