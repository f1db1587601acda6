"""A step attempt that begins where an earlier one died: rows the dead attempt left PROCESSING are
failed with the reason and restarted (attempts 2); rows it closed stay as they are."""

from candleflow.pipeline.result import StageResult
from candleflow.pipeline.tracked import RunTracker
from candleflow.tracking.service import TrackingService
from tests.tracking_fixtures import fetch, new_run_id

STAGES = ["raw_candles", "derived_bars", "indicators"]
SYMBOLS = ["AAA", "BBB"]


def tracker(engine, run_id: str) -> RunTracker:
    return RunTracker(TrackingService(engine), run_id=run_id, root_run_id=run_id, step_key="market_data_pipeline",
                      max_attempts=3)


def row(engine, domain: str, run_id: str, symbol: str) -> dict:
    task_id = TrackingService(engine).lookup(domain, run_id, "market_data_pipeline", [symbol])[symbol]
    return fetch(engine, domain, task_id)


def test_take_over_fails_and_restarts_only_what_the_dead_attempt_left_open(tracking_engine):
    run_id = new_run_id()
    assert tracker(tracking_engine, run_id).take_over(STAGES, SYMBOLS, "lost") == 0  # no rows yet

    dead = tracker(tracking_engine, run_id)
    dead.begin(STAGES, SYMBOLS)
    dead.finish(StageResult("raw_candles", succeeded=SYMBOLS, rows={"AAA": 390, "BBB": 388}))
    # ... and its worker is killed here: bars and indicators rows stay PROCESSING.

    second = tracker(tracking_engine, run_id)
    assert second.take_over(STAGES, SYMBOLS, "attempt lost with its worker") == 4
    failed = row(tracking_engine, "indicators", run_id, "AAA")
    assert (failed["status"], failed["error_message"]) == ("FAILED", "attempt lost with its worker")
    second.begin(STAGES, SYMBOLS)
    for symbol in SYMBOLS:
        ingest = row(tracking_engine, "candle_ingest", run_id, symbol)
        assert (ingest["status"], ingest["attempts"]) == ("COMPLETED", 1)
        for domain in ("derived_bars", "indicators"):
            restarted = row(tracking_engine, domain, run_id, symbol)
            assert (restarted["status"], restarted["attempts"]) == ("PROCESSING", 2), domain
