"""The chart: a symbol's stored daily closes, moving averages and signals as a small PNG."""

import base64
import io
import json
from datetime import date

import pandas as pd
from PIL import Image

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.history import preload_daily_history
from candleflow.reports.chart import markdown_image, moving_averages, signal_marks, symbol_charts
from candleflow.store import CandleStore


def test_moving_averages_are_the_sma_and_ema_outputs_of_the_spec():
    assert moving_averages(DEFAULT_INDICATORS) == ["sma_20", "sma_50", "sma_200", "ema_20"]
    assert moving_averages(DEFAULT_INDICATORS, "5m") == ["sma_20", "ema_20"]


def _signal(scan: str, symbol: str, interval: str, bar_start: int) -> dict:
    return {"scan": scan, "symbol": symbol, "interval": interval, "bar_start": bar_start,
            "formula": "close > 0", "term_values": json.dumps({"close": 1.0})}


def test_charts_of_stored_bars_are_small_pngs(tmp_path):
    store = CandleStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    preload_daily_history(store, ExchangeSessions(), ["AAPL", "KO"], 260, seed=7, through=date(2024, 3, 7))
    daily = store.read_candles(["AAPL"], "1d")
    last = int(daily["bar_start"].iloc[-1])
    recent = daily.tail(30)
    store.write_indicators(pd.DataFrame({"symbol": "AAPL", "interval": "1d", "name": "sma_20",
                                         "bar_start": recent["bar_start"],
                                         "value": daily["close"].rolling(20).mean().tail(30)}))
    store.replace_signals(pd.DataFrame([_signal("golden_cross", "AAPL", "1d", last),
                                        _signal("volume_spike_5m", "AAPL", "5m", last + 3600)]),
                          ["golden_cross", "volume_spike_5m"], ["AAPL"], since=0)

    session_end = last + 390 * 60
    charts = symbol_charts(store, ["AAPL", "KO", "ZZZ"], session_end, moving_averages(DEFAULT_INDICATORS))

    assert set(charts) == {"AAPL", "KO"}  # ZZZ has no stored bars
    for png in charts.values():
        image = Image.open(io.BytesIO(png))
        assert (image.format, image.size) == ("PNG", (640, 320))
        assert len(png) < 60_000
    store.dispose()


def test_a_signal_is_marked_on_the_bar_it_falls_in():
    day = 86_400
    bars = pd.DataFrame({"bar_start": [0, day, 2 * day], "close": [10.0, 11.0, 12.0]})
    signals = pd.DataFrame({"scan": ["daily", "intraday", "intraday", "too_early"],
                            "bar_start": [day, 2 * day + 300, 2 * day + 600, -300]})
    marks = signal_marks(signals, bars)
    assert marks.to_dict("records") == [{"scan": "daily", "bar_start": day, "close": 11.0},
                                        {"scan": "intraday", "bar_start": 2 * day, "close": 12.0}]


def test_markdown_image_inlines_the_png():
    markdown = markdown_image(b"\x89PNG bytes", "AAPL chart")
    prefix = "![AAPL chart](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    assert base64.b64decode(markdown[len(prefix):-1]) == b"\x89PNG bytes"
