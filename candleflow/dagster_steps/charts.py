"""Charts in the materialization metadata of ``indicators``, for a bounded number of symbols.

Which symbols get a chart: every symbol of a run of at most ``MAX_CHARTS`` symbols (so a symbol
materialized from the UI always shows its chart); in a larger run, the symbols with a signal in
this run, most signals first, at most ``MAX_CHARTS``; none when the run did not evaluate the scans.
A 2,500-symbol run thus renders at most 5 charts, not 2,500. Measured (``dagster job execute``,
SQLite): +0.5 s for a 1-symbol run (0.35 s of it importing matplotlib), +0.9 s for a 250-symbol
run (5 charts); each chart is about 45 KB of event log. A chart that cannot be drawn is a warning
in the run log, never a failed run: the data is stored either way.
"""

import time
from collections.abc import Mapping, Sequence

import dagster as dg

from candleflow.market.indicators import IndicatorSpec
from candleflow.pipeline.registry import INDICATORS, SCAN_SIGNALS
from candleflow.pipeline.result import StageResult
from candleflow.store import CandleStore

CHART_ASSET = INDICATORS.asset_key
MAX_CHARTS = 5


def chart_symbols(results: Sequence[StageResult]) -> list[str]:
    """The symbols of this run that get a chart (module docstring)."""
    by_stage = {result.stage: result for result in results}
    charted = by_stage.get(INDICATORS.name)
    if charted is None:
        return []
    if len(charted.succeeded) <= MAX_CHARTS:
        return list(charted.succeeded)
    signals = by_stage.get(SCAN_SIGNALS.name)
    if signals is None:
        return []
    succeeded = set(charted.succeeded)
    with_signals = [symbol for symbol, count in signals.rows.items() if count and symbol in succeeded]
    return sorted(with_signals, key=lambda symbol: (-signals.rows[symbol], symbol))[:MAX_CHARTS]


def chart_metadata(context: dg.AssetExecutionContext, store: CandleStore,
                   specs: Sequence[IndicatorSpec],
                   results: Sequence[StageResult]) -> dict[str, Mapping[str, Mapping[str, object]]]:
    """Extra materialization metadata by asset and symbol: ``{"indicators": {symbol: {"chart": md}}}``."""
    symbols = chart_symbols(results)
    through = next((r.last_bar for r in results if r.stage == INDICATORS.name), None)
    if not symbols or through is None:
        return {}
    started = time.perf_counter()
    # Imported here: matplotlib takes ~0.6 s to import, and the code location must stay cheap to load.
    from candleflow.reports.chart import markdown_image, moving_averages, symbol_charts

    try:
        pngs = symbol_charts(store, symbols, through, moving_averages(specs))
    except Exception as exc:  # a chart is a view of stored data: never fail the run for it
        context.log.warning(f"{CHART_ASSET}: no charts drawn for {', '.join(symbols)}: "
                            f"{type(exc).__name__}: {exc}")
        return {}
    context.log.info(f"{CHART_ASSET}: charts for {', '.join(pngs)} in "
                     f"{time.perf_counter() - started:.2f} s")
    return {CHART_ASSET: {symbol: {"chart": dg.MetadataValue.md(markdown_image(png, f"{symbol} chart"))}
                          for symbol, png in pngs.items()}}
