"""Workload "vendor-day": a Polygon-layout day file at real size, then a universe run over some
of its tickers, beside universe-day (the synthetic source) for the same symbols.

The day file (not timed) holds ``tickers`` tickers for the latest closed session, 04:00-20:00 New
York: the first ``liquid`` trade nearly every regular minute and often in extended hours, the rest
(illiquid) a share of the regular minutes drawn per ticker and few extended ones; gzip CSV in the
vendor's column order. Timed, ``runs`` times each, alternating: reading and filtering the file for
the universe (rows of the file per second), and ``dagster job execute`` of ``market_data`` over the
universe with the day-file source and with the synthetic source (``universe-day``), each on a fresh
store with the same 260 sessions of daily history (wall, peak memory, the raw-candles stage's
rows per second).
"""

import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from candleflow.bench.universe_day import bench_symbols, prepare, timed_run
from candleflow.market.calendar import ExchangeSessions
from candleflow.sources.layouts import POLYGON_DAY
from candleflow.sources.tables import TableSource

EXTENDED = (4 * 60, 20 * 60)  # minutes after midnight, New York


def write_day_file(folder: Path, tickers: int, liquid: int, seed: int = 1) -> tuple[Path, int, str]:
    """The day file, its row count and its session."""
    calendar = ExchangeSessions()
    day = calendar.last_closed_session(datetime.now(UTC))
    session = calendar.sessions(day, day).iloc[0]
    rng = np.random.default_rng(seed)
    names = bench_symbols(liquid) + [f"Z{i:05d}" for i in range(tickers - liquid)]
    starts = np.arange(int(session["extended_open"]), int(session["extended_close"]), 60, dtype=np.int64)
    regular = (starts >= int(session["open"])) & (starts < int(session["close"]))
    chance_regular = np.r_[np.full(liquid, 0.98), rng.uniform(0.05, 0.95, tickers - liquid)]
    chance_extended = np.r_[np.full(liquid, 0.6), rng.uniform(0.0, 0.2, tickers - liquid)]
    chance = np.where(regular[None, :], chance_regular[:, None], chance_extended[:, None])
    traded = rng.random(chance.shape) < chance
    ticker_of, minute_of = np.nonzero(traded)
    base = rng.uniform(5, 500, tickers)[ticker_of]
    walk = np.exp(np.cumsum(rng.normal(0, 0.001, len(ticker_of))))
    close = np.round(base * walk, 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.0005, len(close))), 2)
    spread = np.abs(rng.normal(0, 0.001, len(close))) * close
    table = pa.table({
        "ticker": pa.array(np.asarray(names, dtype=object)[ticker_of], pa.string()),
        "volume": rng.integers(1, 50_000, len(close)),
        "open": open_, "close": close,
        "high": np.round(np.maximum(open_, close) + spread, 2),
        "low": np.round(np.maximum(np.minimum(open_, close) - spread, 0.01), 2),
        "window_start": starts[minute_of] * 1_000_000_000,
        "transactions": rng.integers(1, 500, len(close)),
    })
    path = folder / f"{day}.csv.gz"
    with pa.CompressedOutputStream(str(path), "gzip") as out:
        pa_csv.write_csv(table, out)
    return path, table.num_rows, str(day)


def read_and_filter(folder: Path, universe: list[str], day: str) -> dict:
    calendar = ExchangeSessions()
    session = datetime.fromisoformat(day).date()
    started = time.perf_counter()
    batch = TableSource(folder, POLYGON_DAY, calendar=calendar).fetch(universe, calendar.sessions(session, session))
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "rows_kept": len(batch.candles), "errors": len(batch.errors)}


def vendor_day(symbols: int, tickers: int, runs: int, history: int = 260) -> dict:
    universe = bench_symbols(symbols)
    results = {"read_and_filter": [], "vendor_day": [], "universe_day": []}
    with tempfile.TemporaryDirectory(prefix="candleflow-vendor-day-") as tmp:
        landing = Path(tmp) / "landing"
        landing.mkdir()
        path, rows, day = write_day_file(landing, tickers, liquid=max(symbols, tickers * 2 // 5))
        file_mb = round(path.stat().st_size / 2**20, 1)
        config = Path(tmp) / "run.json"
        config.write_text(json.dumps({"ops": {"market_data_pipeline": {"config": {"start": day, "end": day}}}}))
        files = {"CANDLEFLOW_SOURCE": "files", "CANDLEFLOW_LANDING_DIR": str(landing),
                 "CANDLEFLOW_FILE_LAYOUT": "polygon-day"}
        for run in range(runs):
            read = read_and_filter(landing, universe, day)
            results["read_and_filter"].append({**read, "rows_per_second": round(rows / read["seconds"])})
            for workload in ("vendor_day", "universe_day"):
                with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as work:
                    env = prepare(Path(work), "sqlite", universe, history)
                    if workload == "vendor_day":
                        env.update(files)
                    figures = timed_run(env, universe, config if workload == "vendor_day" else None)
                raw = figures["stage_seconds"]["raw_candles"]
                figures["ingest_rows_per_second"] = round(figures["rows_written"]["raw_candles"] / raw)
                results[workload].append(figures)
    median = {name: {key: statistics.median(r[key] for r in figures) for key in figures[0]
                     if isinstance(figures[0][key], int | float)} for name, figures in results.items()}
    median["wall_ratio_vendor_to_universe_day"] = round(
        median["vendor_day"]["wall_seconds"] / median["universe_day"]["wall_seconds"], 3)
    return {"workload": "vendor-day", "symbols": symbols, "tickers_in_file": tickers, "rows_in_file": rows,
            "file_mb": file_mb, "session": day, "history_sessions": history,
            "runs": results, "median": median}
