"""``python -m candleflow.bench universe-day|scan [options]``: benchmark figures as JSON."""

import argparse
import json
import os
import platform
import statistics


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    memory_kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gb": round(memory_kb / 2**20, 1),
            "python": platform.python_version()}


def medians(runs: list[dict]) -> dict:
    keys = ("wall_seconds", "peak_memory_mb", "tracking_seconds", "dagster_bookkeeping_seconds",
            "dagster_share")
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["stage_seconds"] = {s: round(statistics.median(r["stage_seconds"][s] for r in runs), 3)
                            for s in runs[0]["stage_seconds"]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m candleflow.bench", description=__doc__)
    sub = parser.add_subparsers(dest="workload", required=True)
    day = sub.add_parser("universe-day", help="one session through the whole pipeline in one run")
    day.add_argument("--symbols", type=int, default=2500)
    day.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    day.add_argument("--runs", type=int, default=3)
    day.add_argument("--history", type=int, default=260, help="daily sessions preloaded")
    scan = sub.add_parser("scan", help="3 formulas over N symbols x M daily bars in one process")
    scan.add_argument("--symbols", type=int, default=2500)
    scan.add_argument("--bars", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.workload == "universe-day":
        from candleflow.bench.universe_day import universe_day

        report = universe_day(args.symbols, args.storage, args.runs, args.history)
        report["median"] = medians(report["runs"])
    else:
        from candleflow.formula.benchmark import run_scan_workload

        report = run_scan_workload(symbols=args.symbols, bars=args.bars)
    report["machine"] = machine()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
