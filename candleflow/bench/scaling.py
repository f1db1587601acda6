"""Workload "scaling": universe-day at several universe sizes, written as JSON and as a PNG plot."""

import json
from pathlib import Path

from candleflow.bench.universe_day import median_figures, universe_day


def scaling(sizes: list[int], storage: str, runs: int, history: int, out_dir: Path) -> dict:
    points = []
    for size in sorted(sizes):
        report = universe_day(size, storage, runs, history)
        points.append({"symbols": size, "median": median_figures(report["runs"]), "runs": report["runs"]})
    walls = [point["median"]["wall_seconds"] for point in points]
    report = {"workload": "scaling", "storage": storage, "history_sessions": history,
              "runs_per_size": runs, "points": points,
              "wall_ratio_largest_to_second": round(walls[-1] / walls[-2], 3) if len(walls) > 1 else None}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"scaling-{storage}.json").write_text(json.dumps(report, indent=2))
    from candleflow.bench.plot import plot_curve  # lazy: matplotlib only for this workload

    plot_curve(report, out_dir / f"scaling-{storage}.png")
    return report
