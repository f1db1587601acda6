"""The tracking rows of one step attempt: one row per (stage, symbol) in its domain's table.

begin: create the rows (idempotent per root run, step and symbol; metadata names the stage and
the domain it depends on), re-queue the ones a previous attempt left FAILED, and start them
(attempts + 1). finish: after each stage, COMPLETED with rows written for the symbols that
succeeded, FAILED with the reason for the others, and a heartbeat on the rows of the stages still
to come. close: rows still PROCESSING at the end belong to symbols that dropped out at an earlier
stage. abort: the step is raising; every row still PROCESSING is FAILED with the error, so a step
retry re-queues it. progress: over a window run in chunks, the sessions done of the total on every
row still open; the chunks themselves are rows of ``run_chunks`` (``TrackedChunks``), which the
next attempt of the run chain skips.
"""

import time
from collections.abc import Callable, Mapping, Sequence

from candleflow.pipeline.chunks import ChunkProgress
from candleflow.pipeline.context import PipelineContext
from candleflow.pipeline.registry import stage_named
from candleflow.pipeline.result import StageResult
from candleflow.pipeline.stages import run_stages
from candleflow.pipeline.window import Window
from candleflow.tracking.chunks import ChunkRecords, symbols_key
from candleflow.tracking.service import TaskKey, TrackingService


def _domain(stage: str) -> str:
    return stage_named(stage).tracking_domain


class RunTracker:
    def __init__(self, service: TrackingService, *, run_id: str, root_run_id: str, step_key: str,
                 max_attempts: int):
        self.service = service
        self.run_id, self.root_run_id, self.step_key = run_id, root_run_id, step_key
        self.max_attempts = max_attempts
        self.open: dict[str, set[str]] = {}
        #: Wall seconds spent writing tracking rows (reported beside the stages' own seconds).
        self.seconds = 0.0

    def _keys(self, symbols) -> list[TaskKey]:
        return [TaskKey(self.root_run_id, self.step_key, s) for s in symbols]

    def begin(self, stages: Sequence[str], symbols: Sequence[str]) -> None:
        for index, stage in enumerate(stages):
            domain, keys = _domain(stage), self._keys(symbols)
            depends_on = _domain(stages[index - 1]) if index else None
            self.service.create(domain, run_id=self.run_id, root_run_id=self.root_run_id,
                                step_key=self.step_key, partition_keys=list(symbols),
                                max_attempts=self.max_attempts,
                                metadata={"stage": stage, "depends_on": depends_on})
            self.service.retry(domain, keys)
            self.service.start(domain, keys, self.run_id)
            self.open[stage] = set(symbols)

    def take_over(self, stages: Sequence[str], symbols: Sequence[str], reason: str) -> int:
        """FAILED with ``reason`` for this step's rows still PROCESSING when an attempt begins.

        Only an attempt that died without closing its rows leaves them so (its worker was killed,
        and the broker handed the step to another worker). Failing them first lets ``begin``
        re-queue and restart them, so the rows count the lost attempt. Returns how many rows.
        """
        return sum(self.service.fail(_domain(stage), self._keys(symbols), reason).changed
                   for stage in stages)

    def finish(self, result: StageResult) -> None:
        domain = _domain(result.stage)
        span = (result.first_bar, result.last_bar)
        if result.succeeded:
            keys = self._keys(result.succeeded)
            self.service.complete(domain, keys, rows_written={k: result.rows.get(k.partition_key, 0) for k in keys},
                                  span=span)
        if result.failed:
            self.service.fail(domain, self._keys(result.failed),
                              {k: result.failed[k.partition_key] for k in self._keys(result.failed)})
        self.open[result.stage] -= set(result.succeeded) | set(result.failed)
        for stage, symbols in self.open.items():  # the later stages' rows are alive: heartbeat
            if symbols:
                self.service.heartbeat(_domain(stage), self._keys(sorted(symbols)))

    def progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` sessions on every row still open (a chunked window's progress)."""
        for stage, symbols in self.open.items():
            if symbols:
                self.service.progress(_domain(stage), self._keys(sorted(symbols)), done, total)

    def close(self, reasons: Mapping[str, str] | None = None) -> None:
        """FAILED for symbols a stage never saw: with their reason in ``reasons`` (they failed
        this stage in another step), else because an earlier stage failed them."""
        for stage, symbols in self.open.items():
            if symbols:
                keys = self._keys(sorted(symbols))
                default = f"not run: an earlier stage failed for this symbol ({stage})"
                self.service.fail(_domain(stage), keys,
                                  {key: (reasons or {}).get(key.partition_key, default) for key in keys})
                symbols.clear()

    def abort(self, message: str) -> None:
        for stage, symbols in self.open.items():
            if symbols:
                self.service.fail(_domain(stage), self._keys(sorted(symbols)), message)
                symbols.clear()


class TrackedChunks:
    """The ``ChunkLedger`` of one step's stages and symbols in its run chain (``run_chunks``)."""

    def __init__(self, tracker: RunTracker, stages: Sequence[str], symbols: Sequence[str]):
        self.tracker, self.symbols = tracker, symbols
        self.records = ChunkRecords(tracker.service.engine)
        self.key = symbols_key(stages, symbols)

    def finished(self) -> dict:
        return self.records.finished(self.tracker.root_run_id, self.tracker.step_key, self.key)

    def record(self, chunk: Window, failures, rows_written: int, seconds: float) -> None:
        self.records.record(root_run_id=self.tracker.root_run_id, step_key=self.tracker.step_key,
                            key=self.key, run_id=self.tracker.run_id, first=chunk.first_session,
                            last=chunk.last_session, sessions=len(chunk.sessions), symbols=len(self.symbols),
                            rows_written=rows_written, seconds=seconds, failures=failures)


def run_tracked(ctx: PipelineContext, tracker: RunTracker, stages: Sequence[str],
                symbols: Sequence[str], window: Window | None,
                log: Callable[[str], None] = lambda message: None, *, untracked: Sequence[str] = (),
                prior: Mapping[str, StageResult] | None = None) -> list[StageResult]:
    """``run_stages`` with every stage's outcome written to the tracking rows as it ends, and,
    over a window run in chunks, each chunk recorded (``run_chunks``), its progress logged with
    ``log`` and counted on the rows still open (``items_completed`` of ``items_total`` sessions).

    Stages in ``untracked`` run without tracking rows: another step tracks them, and gets their
    results as its ``prior``, the part of a stage done elsewhere (the scans that do not rank,
    evaluated in the shards) that is added to its own result before the rows are finished."""
    tracked = [stage for stage in stages if stage not in untracked]
    timed(tracker, tracker.begin, tracked, symbols)

    def stage_done(result: StageResult) -> None:
        if prior and result.stage in prior:
            result.absorb(prior[result.stage])
        if result.stage in tracked:
            timed(tracker, tracker.finish, result)

    def chunk_done(progress: ChunkProgress) -> None:
        log(progress.describe())
        timed(tracker, tracker.progress, progress.sessions_done, progress.sessions_total)

    try:
        results = run_stages(ctx, stages, symbols, window, stage_done,
                             ledger=TrackedChunks(tracker, stages, symbols), on_chunk_done=chunk_done)
    except Exception as exc:
        tracker.abort(f"{type(exc).__name__}: {exc}")
        raise
    timed(tracker, tracker.close)
    return results


def timed(tracker: RunTracker, method, *args):
    """``method(*args)``, its wall time added to ``tracker.seconds``."""
    started = time.perf_counter()
    outcome = method(*args)
    tracker.seconds += time.perf_counter() - started
    return outcome
