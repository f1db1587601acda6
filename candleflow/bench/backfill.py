"""Workload "backfill": N symbols x S sessions of 1m bars from the synthetic source through the
whole pipeline in one ``market_data_universe`` run (shards on worker processes, the window chunk
by chunk), launched as ``candleflow backfill`` launches it, with 260 sessions of daily history
stored before the window. Timed as universe-day is (wall, peak memory of every process, stage
seconds), plus rows written per second. A curve over S is written as JSON and PNG.
"""

import json
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from candleflow.bench.universe_day import bench_symbols, median_figures, prepare, timed_run
from candleflow.market.calendar import ExchangeSessions

FIGURES = ("wall_seconds", "peak_memory_mb", "peak_pss_mb", "rows_per_second", "stages_wall_seconds", "tracking_seconds",
           "dagster_bookkeeping_seconds")


def backfill_window(sessions: int) -> tuple[str, str, str]:
    """The last ``sessions`` closed sessions (first, last) and the session before them, where the
    preloaded daily history ends."""
    calendar = ExchangeSessions()
    latest = calendar.last_closed_session(datetime.now(UTC))
    days = calendar.sessions_ending(latest, sessions + 1)["session"]
    return str(days.iloc[1]), str(days.iloc[-1]), str(days.iloc[0])


def backfill_runs(symbols: int, sessions: int, storage: str, runs: int, workers: int, history: int = 260) -> dict:
    universe = bench_symbols(symbols)
    first, last, before = backfill_window(sessions)
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="candleflow-bench-") as tmp:
            env = prepare(Path(tmp), storage, universe, history, through=before)
            env["CANDLEFLOW_WORKERS"] = str(workers)
            config = Path(tmp) / "backfill.json"
            config.write_text(json.dumps({"ops": {"plan_shards": {"config": {"start": first, "end": last}}}}))
            run = timed_run(env, universe, config, job="market_data_universe")
            run["rows_per_second"] = round(sum(run["rows_written"].values()) / run["wall_seconds"])
            results.append(run)
    return {"symbols": symbols, "sessions": sessions, "first_session": first, "last_session": last,
            "median": median_figures(results, FIGURES), "runs": results}


def backfill_curve(symbols: int, sessions: list[int], storage: str, runs: int, workers: int,
                   out_dir: Path) -> dict:
    points = [backfill_runs(symbols, count, storage, runs, workers) for count in sorted(sessions)]
    walls = {point["sessions"]: point["median"]["wall_seconds"] for point in points}
    report = {"workload": "backfill", "symbols": symbols, "storage": storage, "workers": workers,
              "runs_per_point": runs, "points": points,
              "seconds_per_session": {count: round(wall / count, 2) for count, wall in walls.items()},
              "peak_memory_mb_max": max(point["median"]["peak_memory_mb"] for point in points),
              "wall_median_of_medians": statistics.median(walls.values())}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"backfill-{storage}.json").write_text(json.dumps(report, indent=2))
    from candleflow.bench.plot import plot_curve  # lazy: matplotlib only for the curve

    plot_curve(report, out_dir / f"backfill-{storage}.png", x="sessions")
    return report
