"""Workload "ingest": idempotent upserts of one session of 1m candles into a Postgres store.

One session of synthetic 1m bars for N symbols (390 per symbol, fewer on early closes and where
the synthetic source leaves minutes out) is written three times through ``CandleStore.write_candles``,
the product's write path, into a fresh database: as new rows, again unchanged (rows already
present: the re-run case), and again with every price changed by 1% (rows present and updated). Timed:
the write call only, not the generation of the frame.
"""

import statistics
import time
from datetime import UTC, datetime

from candleflow.bench.universe_day import bench_symbols, recreate_databases
from candleflow.market.calendar import ExchangeSessions
from candleflow.market.frames import PRICE_COLUMNS
from candleflow.market.synthetic import synthetic_minutes
from candleflow.store import CandleStore

DATABASE = "candleflow_bench_ingest"


def _timed_write(store: CandleStore, frame) -> float:
    started = time.perf_counter()
    store.write_candles(frame, "1m")
    return time.perf_counter() - started


def ingest(symbols: int, runs: int) -> dict:
    calendar = ExchangeSessions()
    session = calendar.last_closed_session(datetime.now(UTC))
    frame = synthetic_minutes(bench_symbols(symbols), calendar.sessions(session, session), seed=7, calendar=calendar)
    changed = frame.assign(**{column: frame[column] * 1.01 for column in PRICE_COLUMNS})
    figures = []
    for _ in range(runs):
        recreate_databases(DATABASE)
        store = CandleStore(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}")
        store.create_schema()
        seconds = {case: _timed_write(store, data)
                   for case, data in (("new", frame), ("present_unchanged", frame),
                                      ("present_changed", changed))}
        store.dispose()
        figures.append({case: {"seconds": round(s, 3), "rows_per_second": round(len(frame) / s)}
                        for case, s in seconds.items()})
    median = {case: round(statistics.median(run[case]["rows_per_second"] for run in figures))
              for case in figures[0]}
    return {"workload": "ingest", "storage": "postgres", "symbols": symbols, "rows": len(frame),
            "runs": figures, "median_rows_per_second": median}
