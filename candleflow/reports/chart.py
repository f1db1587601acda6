"""A symbol's recent daily bars as a small PNG: close, moving averages, stored signals marked.

Read from the store, so the picture shows what a user would query. No Dagster here: the asset
layer chooses the symbols and where the picture goes. Rendered on matplotlib's Agg canvas (no
display, no pyplot state) at 640x320 px, a few tens of KB, because Dagster keeps it base64-encoded
in its event log.
"""

import base64
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from candleflow.market.indicators import IndicatorSpec
from candleflow.market.intervals import DAILY
from candleflow.store import CandleStore

#: Calendar days before the last bar that a chart shows: about six months of sessions.
CHART_DAYS = 183
WIDTH_PX, HEIGHT_PX, DPI = 640, 320, 80
MOVING_AVERAGE_FUNCTIONS = ("SMA", "EMA")
#: One marker per scan, in the order the scans first appear in the chart.
SIGNAL_MARKERS = ("^", "v", "D", "s", "P", "X", "*")


def moving_averages(specs: Iterable[IndicatorSpec], interval: str = DAILY) -> list[str]:
    """Names of the SMA and EMA outputs the indicator spec computes on ``interval``."""
    return [output for spec in specs
            if spec.function in MOVING_AVERAGE_FUNCTIONS and interval in spec.intervals
            for output in spec.outputs]


def symbol_charts(store: CandleStore, symbols: Sequence[str], through: int,
                  averages: Sequence[str]) -> dict[str, bytes]:
    """PNG per symbol of its daily bars in the CHART_DAYS up to ``through`` (epoch seconds), with
    the ``averages`` indicator values and the signals stored in that time; a symbol without daily
    bars there gets none."""
    start, end = through - CHART_DAYS * 86400, through + 1
    bars = store.read_candles(symbols, DAILY, start, end)
    values = store.read_indicators(symbols, DAILY, start, end)
    values = values[values["name"].isin(averages)]
    signals = store.read_signals(since=start)
    signals = signals[signals["bar_start"] < end]
    return {symbol: render_chart(symbol, bars[bars["symbol"] == symbol],
                                 values[values["symbol"] == symbol],
                                 signals[signals["symbol"] == symbol])
            for symbol in symbols if (bars["symbol"] == symbol).any()}


def render_chart(symbol: str, bars: pd.DataFrame, averages: pd.DataFrame,
                 signals: pd.DataFrame) -> bytes:
    """PNG of ``bars``' closes, the ``averages`` lines (indicator rows: name, bar_start, value; a dot
    on each one's latest value, so that a fresh store's single value shows) and a marker per signal
    on the bar it falls in (an intraday signal marks its session's bar)."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(_dates(bars["bar_start"]), bars["close"], color="black", linewidth=1.3, label="close")
    for name, line in averages.groupby("name", sort=True):
        axes.plot(_dates(line["bar_start"]), line["value"], linewidth=1, marker="o", markersize=4,
                  markevery=[-1], label=name)
    marked = signal_marks(signals, bars)
    for marker, (scan, hits) in zip(SIGNAL_MARKERS, marked.groupby("scan", sort=False)):
        axes.scatter(_dates(hits["bar_start"]), hits["close"], marker=marker, s=60, zorder=3,
                     edgecolors="black", linewidths=0.6, label=scan)
    axes.set_title(f"{symbol} daily close and moving averages; {_latest(signals)}", fontsize=9)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", ncol=2, framealpha=0.8)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return png.getvalue()


def signal_marks(signals: pd.DataFrame, bars: pd.DataFrame) -> pd.DataFrame:
    """Each signal placed on the last bar starting at or before it: (scan, bar_start, close)."""
    if signals.empty or bars.empty:
        return pd.DataFrame({"scan": [], "bar_start": [], "close": []})
    starts = bars["bar_start"].to_numpy()
    position = starts.searchsorted(signals["bar_start"].to_numpy(), side="right") - 1
    inside = position >= 0
    placed = bars.iloc[position[inside]]
    return pd.DataFrame({"scan": signals["scan"].to_numpy()[inside],
                         "bar_start": placed["bar_start"].to_numpy(),
                         "close": placed["close"].to_numpy()}).drop_duplicates()


def markdown_image(png: bytes, alt: str = "chart") -> str:
    """``png`` inlined as a markdown image, which Dagster's UI shows for markdown metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _dates(epoch_seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(epoch_seconds, unit="s")


def _latest(signals: pd.DataFrame) -> str:
    if signals.empty:
        return "no signals"
    newest = signals.loc[signals["bar_start"].idxmax()]
    return f"latest signal: {newest['scan']} {datetime.fromtimestamp(newest['bar_start'], UTC):%Y-%m-%d}"
