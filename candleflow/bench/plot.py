"""A workload's curve as a PNG: seconds (wall, each stage, tracking, Dagster) and peak memory
against the number of symbols (scaling) or of sessions (backfill)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def plot_curve(report: dict, path: Path, x: str = "symbols") -> None:
    points = report["points"]
    sizes = [point[x] for point in points]
    medians = [point["median"] for point in points]
    lines = {"wall": [m["wall_seconds"] for m in medians],
             **{stage: [m["stage_seconds"][stage] for m in medians] for stage in medians[0]["stage_seconds"]},
             "task tracking": [m["tracking_seconds"] for m in medians],
             "Dagster bookkeeping": [m["dagster_bookkeeping_seconds"] for m in medians]}
    figure, (seconds, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, values in lines.items():
        seconds.plot(sizes, values, marker="o", label=label, linewidth=2.5 if label == "wall" else 1.2)
    seconds.set(xlabel=x, ylabel="seconds (median)", title=f"{report['workload']}: time")
    seconds.legend(fontsize=8)
    memory.plot(sizes, [m["peak_memory_mb"] for m in medians], marker="o", color="tab:purple")
    memory.set(xlabel=x, ylabel="MB", title="peak memory, all processes")
    for axes in (seconds, memory):
        axes.grid(alpha=0.3)
        axes.set_ylim(bottom=0)
    figure.suptitle(f"candleflow {report['workload']} on {report['storage']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
