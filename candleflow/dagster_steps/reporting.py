"""A stage's outcome in Dagster: one materialization per succeeded symbol (none for a failed one,
so the UI's partition status stays true), failures and notes in the step's log.

Shared by the ``market_data`` multi-asset and the ops of the sharded job.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from candleflow.dagster_steps.events import report_materializations
from candleflow.market.checks import CheckOutcome
from candleflow.market.validation import format_utc
from candleflow.pipeline.registry import stage_named
from candleflow.pipeline.result import StageResult


def report_stage(context: dg.OpExecutionContext | dg.AssetExecutionContext, result: StageResult,
                 tracking_seconds: float, extra: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Materializations with ``extra`` metadata by symbol; failures to the log (the asset checks
    of the ``market_data`` job report them too)."""
    extra = extra or {}
    span = {}
    if result.first_bar is not None:
        span = {"first_bar": format_utc(result.first_bar), "last_bar": format_utc(result.last_bar),
                "time_span": time_span(result.first_bar, result.last_bar)}
    context.log.info(f"{result.stage}: {len(result.succeeded)} symbols, {result.rows_written} rows "
                     f"in {result.seconds:.2f} s; {len(result.failed)} failed")
    for symbol, reason in result.failed.items():
        context.log.error(f"{result.stage} failed for {symbol}: {reason}")
    if result.notes:
        context.log.info(f"{result.stage}: {len(result.notes)} symbols with notes, e.g. "
                         f"{next(iter(result.notes.values()))}")
    shared = {"symbols_in_run": len(result.succeeded), "run_rows": result.rows_written,
              "stage_seconds": round(result.seconds, 3), "tracking_seconds": round(tracking_seconds, 3),
              **span, **_changed_bars(result)}
    report_materializations(context, stage_named(result.stage).asset_key, {
        symbol: {"rows": result.rows.get(symbol, 0), **shared,
                 **({"note": result.notes[symbol]} if symbol in result.notes else {}),
                 **extra.get(symbol, {})}
        for symbol in result.succeeded
    })


def check_evaluation(stage: str, outcome: CheckOutcome) -> dg.AssetCheckEvaluation:
    """``outcome`` as the evaluation of its check on the asset of ``stage``, with its metadata."""
    return dg.AssetCheckEvaluation(asset_key=dg.AssetKey(stage_named(stage).asset_key), check_name=outcome.name,
                                   passed=outcome.passed, metadata=check_metadata(outcome))


def check_metadata(outcome: CheckOutcome) -> dict[str, object]:
    """How many symbols a check saw and failed, and the first 50 failures."""
    return {"symbols_checked": outcome.symbols_checked, "symbols_failed": len(outcome.failures),
            "failures": dg.MetadataValue.json(dict(list(outcome.failures.items())[:50]))}


def _changed_bars(result: StageResult) -> dict[str, dg.MetadataValue]:
    """``changed_bars``: per interval, the first and last bar written (what consumers re-read)."""
    if not result.changed:
        return {}
    return {"changed_bars": dg.MetadataValue.json(
        {interval: [format_utc(first), format_utc(last)] for interval, (first, last) in result.changed.items()})}


def time_span(first: int, last: int) -> str:
    """``2024-03-08 14:30 to 20:59 UTC``: the bars a stage wrote, the date once if it is one day."""
    start, end = (datetime.fromtimestamp(t, UTC) for t in (first, last))
    end_format = "%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M"
    return f"{start:%Y-%m-%d %H:%M} to {end.strftime(end_format)} UTC"
