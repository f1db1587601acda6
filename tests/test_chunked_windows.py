"""A window of many sessions taken through the stages chunk by chunk.

A chunked run stores what one run over the whole window stores (bars row for row, indicator values
within 1e-9 relative: an EMA's start differs by a chunk, far beyond its warm-up, and signals), on
SQLite and Postgres; a symbol without candles in some chunks succeeds from the others; a killed
run's next attempt continues from its first unfinished chunk and writes nothing twice; progress
reaches the log and the tracking rows.
"""

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from pipeline_fixtures import TABLES, prepared_store, statuses, table

from candleflow.market.calendar import ExchangeSessions
from candleflow.market.indicators import DEFAULT_INDICATORS
from candleflow.pipeline.chunks import session_chunks, sessions_per_chunk
from candleflow.pipeline.registry import STAGES
from candleflow.pipeline.stages import PipelineContext, run_stages
from candleflow.pipeline.tracked import RunTracker, run_tracked
from candleflow.pipeline.window import window_between
from candleflow.pipeline.scan_config import load_scans
from candleflow.sources.files import FileSource
from candleflow.sources.synthetic import SyntheticSource
from candleflow.tracking.chunks import ChunkRecords
from candleflow.tracking.service import TrackingService

CALENDAR = ExchangeSessions()
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
FIRST, LAST = date(2024, 3, 4), date(2024, 3, 8)  # Monday to Friday: five sessions
WINDOW = window_between(CALENDAR, FIRST, LAST)
#: Bars of one session of SYMBOLS: the chunk size that makes one session a chunk.
ONE_SESSION = len(SYMBOLS) * 390


def context(store, source=None, chunk_bars: int = 10**9) -> PipelineContext:
    return PipelineContext(store, source or SyntheticSource(seed=7, calendar=CALENDAR), CALENDAR, DEFAULT_INDICATORS,
                           load_scans(None), chunk_bars=chunk_bars)


def tracker(store, run_id: str, root_run_id: str = "root") -> RunTracker:
    return RunTracker(TrackingService(store.engine), run_id=run_id, root_run_id=root_run_id,
                      step_key="market_data_pipeline", max_attempts=3)


def assert_same_store(chunked, whole) -> None:
    """Bars row for row; indicator values and the values signals matched on within 1e-9 relative
    (a rolling sum started at another bar rounds differently in the last digits)."""
    pd.testing.assert_frame_equal(table(chunked, "candles"), table(whole, "candles"), obj="candles")
    got, expected = table(chunked, "indicator_values"), table(whole, "indicator_values")
    keys = TABLES["indicator_values"]
    pd.testing.assert_frame_equal(got[keys], expected[keys])
    np.testing.assert_allclose(got["value"], expected["value"], rtol=1e-9, equal_nan=True)
    got, expected = table(chunked, "signals"), table(whole, "signals")
    pd.testing.assert_frame_equal(got.drop(columns="term_values"), expected.drop(columns="term_values"))
    for mine, theirs in zip(got["term_values"].map(json.loads), expected["term_values"].map(json.loads), strict=True):
        assert mine.keys() == theirs.keys()
        np.testing.assert_allclose(list(mine.values()), list(theirs.values()), rtol=1e-9)


def test_chunk_size_follows_symbols_and_bars():
    assert sessions_per_chunk(CALENDAR, "1m", 2500, 1_000_000) == 1
    assert sessions_per_chunk(CALENDAR, "1m", 250, 1_000_000) == 10
    assert sessions_per_chunk(CALENDAR, "1m", 10, 100) == 1
    assert sessions_per_chunk(CALENDAR, "1d", 2500, 1_000_000) == 400
    chunks = session_chunks(WINDOW, 2)
    assert [(c.first_session, c.last_session) for c in chunks] == [
        (date(2024, 3, 4), date(2024, 3, 5)), (date(2024, 3, 6), date(2024, 3, 7)),
        (date(2024, 3, 8), date(2024, 3, 8))]


def test_chunked_run_stores_what_one_run_stores(tmp_path, store_url):
    whole = prepared_store(f"sqlite:///{tmp_path / 'whole.db'}", SYMBOLS)
    chunked = prepared_store(store_url, SYMBOLS)
    one = run_stages(context(whole), STAGES, SYMBOLS, WINDOW)
    progress = []
    many = run_stages(context(chunked, chunk_bars=ONE_SESSION), STAGES, SYMBOLS, WINDOW,
                      on_chunk_done=progress.append)
    assert [p.sessions_done for p in progress] == [1, 2, 3, 4, 5]
    assert progress[-1].describe().startswith("chunk 5/5 (2024-03-08) done: 5 of 5 sessions, ")
    assert_same_store(chunked, whole)
    for a, b in zip(one, many, strict=True):
        assert (b.stage, b.succeeded, b.failed, b.rows, b.first_bar, b.last_bar) == (
            a.stage, a.succeeded, a.failed, a.rows, a.first_bar, a.last_bar)
        assert [(c.name, c.passed) for c in b.checks] == [(c.name, c.passed) for c in a.checks]
    candles = table(chunked, "candles")
    assert one[0].rows["AAA"] == len(candles[(candles["symbol"] == "AAA") & (candles["interval"] == "1m")]) > 1900


def land(folder, symbol: str, days: list[date]) -> None:
    folder.mkdir(exist_ok=True)
    lines = []
    for day in days:
        opens = CALENDAR.sessions(day, day)["open"].iloc[0]
        lines += [f"{symbol},{datetime.fromtimestamp(int(opens) + 60 * i, UTC):%Y-%m-%dT%H:%M:%SZ},10,11,9,10.5,100\n"
                  for i in range(390)]
    (folder / f"{symbol}.csv").write_text("symbol,ts,open,high,low,close,volume\n" + "".join(lines))


def test_symbol_without_candles_in_some_chunks(tmp_path):
    symbols = ["EARLY", "LATE", "BEFORE", "NONE"]
    store = prepared_store(f"sqlite:///{tmp_path / 'store.db'}", symbols)
    landing = tmp_path / "landing"
    land(landing, "EARLY", [FIRST])
    land(landing, "LATE", [LAST])
    land(landing, "BEFORE", [date(2024, 3, 1)])
    results = run_stages(context(store, FileSource(landing, calendar=CALENDAR), chunk_bars=4 * 390), STAGES,
                         symbols, WINDOW)
    ingest = results[0]
    assert ingest.succeeded == ["EARLY", "LATE"]
    assert ingest.failed == {"BEFORE": "BEFORE: no candles from the source for 2024-03-04..2024-03-08",
                             "NONE": f"no landed file for NONE in {landing}"}
    assert ingest.rows == {"EARLY": 390, "LATE": 390}
    assert [r.succeeded for r in results[1:]] == [["EARLY", "LATE"]] * 3
    valid = next(c for c in ingest.checks if c.name == "valid_candles")
    assert valid.failures == ingest.failed


class Killed(RuntimeError):
    pass


class DiesOnSession(SyntheticSource):
    """The synthetic source, killed (raising) when asked for ``session``: a worker lost mid-run."""

    def __init__(self, session: date, calls: list):
        super().__init__(seed=7, calendar=CALENDAR)
        self.session, self.calls = session, calls

    def fetch(self, symbols, sessions=None):
        self.calls.append(sessions["session"].iloc[0])
        if self.session in set(sessions["session"]):
            raise Killed(f"killed at {self.session}")
        return super().fetch(symbols, sessions)


def test_killed_run_continues_from_its_first_unfinished_chunk(tmp_path):
    whole = prepared_store(f"sqlite:///{tmp_path / 'whole.db'}", SYMBOLS)
    run_stages(context(whole), STAGES, SYMBOLS, WINDOW)
    store = prepared_store(f"sqlite:///{tmp_path / 'store.db'}", SYMBOLS)
    calls = []
    with pytest.raises(Killed):
        run_tracked(context(store, DiesOnSession(date(2024, 3, 6), calls), ONE_SESSION), tracker(store, "run-1"),
                    STAGES, SYMBOLS, WINDOW)
    assert calls == [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
    assert statuses(store, "candle_ingest")["AAA"] == ("FAILED", 1)
    calls.clear()
    logged = []
    results = run_tracked(context(store, DiesOnSession(date(1999, 1, 4), calls), ONE_SESSION),
                          tracker(store, "run-2"), STAGES, SYMBOLS, WINDOW, logged.append)
    assert calls == [date(2024, 3, 6), date(2024, 3, 7), date(2024, 3, 8)]  # the first two: skipped
    assert logged[0].startswith("chunk 1/5 (2024-03-04) done: 1 of 5 sessions, 0 rows")
    assert logged[-1].startswith("chunk 5/5 (2024-03-08) done: 5 of 5 sessions, ")
    assert results[0].succeeded == SYMBOLS
    minutes = table(store, "candles").query("symbol == 'AAA' and interval == '1m'")["bar_start"]
    assert results[0].rows["AAA"] == (minutes >= WINDOW.sessions["open"].iloc[2]).sum()  # this attempt's
    assert_same_store(store, whole)
    assert statuses(store, "candle_ingest")["AAA"] == ("COMPLETED", 2)
    totals = ChunkRecords(store.engine).totals("root")
    assert (totals.chunks, totals.sessions) == (5, 5)


def test_progress_on_the_tracking_rows(tmp_path):
    store = prepared_store(f"sqlite:///{tmp_path / 'store.db'}", SYMBOLS)
    run_tracked(context(store, chunk_bars=2 * ONE_SESSION), tracker(store, "run-1"), STAGES, SYMBOLS, WINDOW)
    with store.engine.connect() as conn:
        rows = pd.read_sql("SELECT status, items_completed, items_total FROM scans_task_tracking", conn)
    assert rows.values.tolist() == [["COMPLETED", 5, 5]] * len(SYMBOLS)
