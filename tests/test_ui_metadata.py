"""What the Dagster UI shows of candleflow: groups, kinds, owners and descriptions of the
definitions, and the metadata and charts of each materialization."""

import base64
import io
import logging

import dagster as dg
import pytest
from PIL import Image

from candleflow.dagster_steps.charts import MAX_CHARTS, chart_symbols
from candleflow.definitions import defs
from candleflow.pipeline.result import StageResult
from tests.pipeline_fixtures import ASSETS, prepared_store, run_pipeline, sqlite_instance

SYMBOLS = ["AAPL", "AMZN", "BRK.B", "JPM", "KO", "MSFT", "NVDA", "XOM"]


def test_assets_are_grouped_described_and_owned():
    graph = defs.resolve_asset_graph()
    nodes = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {name: node.group_name for name, node in nodes.items()} == {
        "raw_candles": "ingest", "derived_bars": "bars", "indicators": "analytics",
        "scan_signals": "analytics"}
    for name, node in nodes.items():
        assert node.description and node.owners == ["team:market-data"], name
        assert "sql" in node.kinds and len(node.kinds) == 2, name
    checks = defs.resolve_assets_def("raw_candles").check_specs
    assert all(check.description for check in checks)


def test_schedules_sensors_and_jobs_are_described():
    repository = defs.get_repository_def()
    described = {d.name: d.description for d in (*repository.schedule_defs, *repository.sensor_defs,
                                                  *repository.get_all_jobs())
                 if not d.name.startswith("__")}
    assert set(described) >= {"daily_after_close", "tracking_reconciler", "tracking_retention_daily",
                              "landing_folder_sensor", "tracking_on_run_failure",
                              "tracking_on_run_canceled", "market_data", "tracking_retention"}
    assert [name for name, description in described.items() if not description] == []


def _latest_metadata(instance, asset: str, symbol: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[symbol]), limit=1).records
    return {key: value.value for key, value in records[0].asset_materialization.metadata.items()}


def test_one_symbol_run_shows_rows_span_duration_and_a_chart(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, ["MSFT"])
    with sqlite_instance(tmp_path) as instance:
        run_pipeline(instance, store_url, ["MSFT"])
        metadata = {asset: _latest_metadata(instance, asset, "MSFT") for asset in ASSETS}
    minutes = store.read_candles(["MSFT"], "1m")
    assert metadata["raw_candles"]["rows"] == len(minutes)
    assert metadata["raw_candles"]["time_span"] == "2024-03-08 14:30 to 20:59 UTC"
    for asset, values in metadata.items():
        assert {"rows", "symbols_in_run", "stage_seconds", "first_bar", "last_bar"} <= set(values), asset
    assert [asset for asset, values in metadata.items() if "chart" in values] == ["indicators"]
    prefix = "![MSFT chart](data:image/png;base64,"
    chart = metadata["indicators"]["chart"]
    assert chart.startswith(prefix)
    png = base64.b64decode(chart[len(prefix):-1])
    assert Image.open(io.BytesIO(png)).size == (640, 320) and len(png) < 60_000


def test_a_large_run_charts_at_most_five_symbols_with_signals(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = prepared_store(store_url, SYMBOLS)
    with sqlite_instance(tmp_path) as instance:
        run_pipeline(instance, store_url, SYMBOLS)
        charted = {symbol for symbol in SYMBOLS
                   if "chart" in _latest_metadata(instance, "indicators", symbol)}
    signalled = set(store.read_signals()["symbol"])
    assert len(charted) == MAX_CHARTS and charted <= signalled


def test_a_chart_that_cannot_be_drawn_is_a_warning(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr("candleflow.reports.chart.symbol_charts", broken)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    prepared_store(store_url, ["KO"])
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, store_url, ["KO"])
        warnings = [entry.user_message for entry in instance.all_logs(result.run_id)
                    if entry.level == logging.WARNING]
        assert result.success
        assert "chart" not in _latest_metadata(instance, "indicators", "KO")
    assert "indicators: no charts drawn for KO: RuntimeError: no fonts" in warnings


def _stage(stage: str, succeeded: list[str], rows: dict[str, int] | None = None) -> StageResult:
    return StageResult(stage, succeeded=succeeded, rows=rows or {})


@pytest.mark.parametrize("results, expected", [
    ([_stage("indicators", ["A", "B", "C"])], ["A", "B", "C"]),
    ([_stage("indicators", list("ABCDEFG")),
      _stage("scan_signals", list("ABCDEFG"), {"G": 1, "B": 3, "C": 1, "D": 2, "E": 1, "F": 1})],
     ["B", "D", "C", "E", "F"]),
    ([_stage("indicators", list("ABCDEF")), _stage("scan_signals", list("ABCDEF"), {"Z": 2, "A": 1})],
     ["A"]),
    ([_stage("indicators", list("ABCDEF"))], []),
    ([_stage("raw_candles", ["A"]), _stage("scan_signals", ["A"], {"A": 1})], []),
], ids=["small run: every symbol", "large run: most signals first, capped",
        "only symbols with indicators", "large run without scans", "indicators not in the run"])
def test_chart_symbols(results, expected):
    assert chart_symbols(results) == expected
