"""``python -m candleflow.bench universe-day|backfill|vendor-day|scaling|ingest|scan [options]``: figures
as JSON."""

import argparse
import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    memory_kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gb": round(memory_kb / 2**20, 1),
            "python": platform.python_version()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m candleflow.bench", description=__doc__)
    sub = parser.add_subparsers(dest="workload", required=True)
    day = sub.add_parser("universe-day", help="one session through the whole pipeline in one run")
    day.add_argument("--symbols", type=int, default=2500)
    day.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    day.add_argument("--runs", type=int, default=3)
    day.add_argument("--history", type=int, default=260, help="daily sessions preloaded")
    day.add_argument("--workers", type=int, help="run market_data_universe on this many worker "
                     "processes (default: market_data, one step)")
    fill = sub.add_parser("backfill", help="N symbols x S sessions in one market_data_universe run; "
                          "a curve over S as JSON and PNG in --out")
    fill.add_argument("--symbols", type=int, default=2500)
    fill.add_argument("--sessions", default="1,5,20,60", help="comma-separated session counts")
    fill.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    fill.add_argument("--runs", type=int, default=3)
    fill.add_argument("--workers", type=int, default=0, help="0: one per core")
    fill.add_argument("--out", type=Path, default=Path("bench-results"))
    vendor = sub.add_parser("vendor-day", help="a Polygon day file at real size read, filtered and run "
                            "through the pipeline for N of its tickers, beside universe-day")
    vendor.add_argument("--symbols", type=int, default=2500)
    vendor.add_argument("--tickers", type=int, default=10000, help="tickers in the day file")
    vendor.add_argument("--runs", type=int, default=3)
    vendor.add_argument("--history", type=int, default=260)
    curve = sub.add_parser("scaling", help="universe-day at several sizes; JSON and PNG in --out")
    curve.add_argument("--sizes", default="250,1000,2500,5000", help="comma-separated symbol counts")
    curve.add_argument("--storage", choices=("sqlite", "postgres"), default="postgres")
    curve.add_argument("--runs", type=int, default=3)
    curve.add_argument("--history", type=int, default=260)
    curve.add_argument("--out", type=Path, default=Path("bench-results"))
    held = sub.add_parser("storage", help="write and read a session of 1m bars into a candles table "
                          "already holding 0, 20 and 60 sessions; bytes per stored bar")
    held.add_argument("--symbols", type=int, default=2500)
    held.add_argument("--held", default="0,20,60", help="comma-separated session counts")
    held.add_argument("--storage", default="sqlite,postgres", help="comma-separated backends")
    ingest = sub.add_parser("ingest", help="idempotent upserts of one session of 1m bars into Postgres")
    ingest.add_argument("--symbols", type=int, default=2500)
    ingest.add_argument("--runs", type=int, default=3)
    minute = sub.add_parser("incremental-minute", help="one new minute for N symbols whose session "
                            "so far is processed (Postgres)")
    minute.add_argument("--symbols", type=int, default=2500)
    minute.add_argument("--runs", type=int, default=3)
    minute.add_argument("--history", type=int, default=260)
    cday = sub.add_parser("celery-day", help="universe-day through the Celery path beside the multiprocess one")
    cday.add_argument("--symbols", type=int, default=250)
    cday.add_argument("--runs", type=int, default=3)
    cday.add_argument("--workers", type=int, default=2)
    cday.add_argument("--shard-size", type=int, default=0, help="0: symbols / workers")
    cday.add_argument("--history", type=int, default=260)
    scan = sub.add_parser("scan", help="3 formulas over N symbols x M daily bars in one process")
    scan.add_argument("--symbols", type=int, default=2500)
    scan.add_argument("--bars", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.workload == "universe-day":
        from candleflow.bench.universe_day import (STEP_FIGURES, UNIVERSE_DAY_FIGURES, median_figures,
                                                   universe_day)

        job = "market_data" if args.workers is None else "market_data_universe"
        report = universe_day(args.symbols, args.storage, args.runs, args.history, job, args.workers or 0)
        report["median"] = median_figures(report["runs"], (*UNIVERSE_DAY_FIGURES, *STEP_FIGURES))
    elif args.workload == "backfill":
        from candleflow.bench.backfill import backfill_curve

        sessions = [int(count) for count in args.sessions.split(",")]
        report = backfill_curve(args.symbols, sessions, args.storage, args.runs, args.workers, args.out)
    elif args.workload == "storage":
        from candleflow.bench.storage import storage

        report = storage(args.symbols, [int(n) for n in args.held.split(",")], args.storage.split(","))
    elif args.workload == "vendor-day":
        from candleflow.bench.vendor_day import vendor_day

        report = vendor_day(args.symbols, args.tickers, args.runs, args.history)
    elif args.workload == "scaling":
        from candleflow.bench.scaling import scaling

        sizes = [int(size) for size in args.sizes.split(",")]
        report = scaling(sizes, args.storage, args.runs, args.history, args.out)
    elif args.workload == "celery-day":
        from candleflow.bench.celery_day import celery_day

        report = celery_day(args.symbols, args.runs, args.workers, args.shard_size, args.history)
    elif args.workload == "ingest":
        from candleflow.bench.ingest import ingest

        report = ingest(args.symbols, args.runs)
    elif args.workload == "incremental-minute":
        from candleflow.bench.incremental import incremental_minute

        report = incremental_minute(args.symbols, args.runs, args.history)
    else:
        from candleflow.formula.benchmark import run_scan_workload

        report = run_scan_workload(symbols=args.symbols, bars=args.bars)
    report["machine"] = machine()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
