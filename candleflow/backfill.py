"""``candleflow backfill --from D --to D [--symbols ... | --universe FILE]``: a window of history for
many symbols as one ``market_data_universe`` run, watched until it ends, and continued if it was
killed.

The run spreads its symbols over worker processes and takes the window chunk by chunk
(``candleflow.pipeline.chunks``), so memory does not grow with the window. While it runs, the
command prints the progress the steps record in ``run_chunks`` (sessions done of total, rows, time
left); the run's own log in the UI has the same per chunk. A backfill is named by its window and
symbols (the ``candleflow/backfill`` tag): when the latest run of the same backfill did not
succeed (it failed, or its process was killed), the command launches a run that continues its run
chain (``candleflow/root_run_id``), so every finished chunk is skipped and the first unfinished one
is where it starts again. Writes are upserts: a chunk cut off halfway is written again whole,
never twice.
"""

import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg

from candleflow.dagster_steps.partitions import ROOT_RUN_TAG, root_run_id
from candleflow.environment import console_script
from candleflow.pipeline.window import window_between
from candleflow.settings import Settings
from candleflow.store import CandleStore
from candleflow.tracking.chunks import ChunkRecords

JOB = "market_data_universe"
BACKFILL_TAG = "candleflow/backfill"
#: host:pid of the command watching a backfill's run: a run left STARTED by a process that is gone
#: was killed, and is continued.
LAUNCHER_TAG = "candleflow/launcher"
UNFINISHED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    symbols: tuple[str, ...]

    @property
    def key(self) -> str:
        text = f"{self.first}..{self.last}|" + ",".join(sorted(self.symbols))
        return f"{self.first}..{self.last}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"

    def run_config(self) -> dict:
        return {"ops": {"plan_shards": {"config": {"start": str(self.first), "end": str(self.last),
                                                   "symbols": list(self.symbols)}}}}


def run_backfill(instance: dg.DagsterInstance, settings: Settings, backfill: Backfill, log_file: Path,
                 interval_s: float = 5.0) -> int:
    """Launch (or continue) ``backfill`` and print its progress until the run ends; 0 if it succeeded."""
    sessions = len(window_between(settings.sessions(), backfill.first, backfill.last).sessions)
    tags = {BACKFILL_TAG: backfill.key, LAUNCHER_TAG: f"{socket.gethostname()}:{os.getpid()}"}
    previous = _latest_run(instance, backfill.key)
    if previous is not None:
        if previous.status == dg.DagsterRunStatus.SUCCESS:
            print(f"backfill {backfill.key} already succeeded in run {previous.run_id}")
            return 0
        if not _continuable(instance, previous):
            print(f"backfill {backfill.key} is running in run {previous.run_id} ({previous.tags.get(LAUNCHER_TAG)})")
            return 1
        tags[ROOT_RUN_TAG] = root_run_id(previous)
        print(f"continuing backfill {backfill.key} from run {previous.run_id}: finished chunks are skipped")
    print(f"backfill {backfill.key}: {len(backfill.symbols)} symbols x {sessions} sessions; "
          f"run log in {log_file}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "run.json"
        config.write_text(json.dumps(backfill.run_config()))
        command = [console_script("dagster"), "job", "execute", "-m", "candleflow.definitions", "-j", JOB,
                   "-c", str(config), "--tags", json.dumps(tags)]
        with open(log_file, "a") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            _watch(instance, settings, backfill, process, sessions, interval_s)
    run = _latest_run(instance, backfill.key)
    print(f"backfill {backfill.key}: run {run.run_id if run else '?'} {run.status.value if run else 'not created'}")
    return 0 if process.returncode == 0 else 1


def _latest_run(instance: dg.DagsterInstance, key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: key}), limit=1)
    return runs[0] if runs else None


def _continuable(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Failed or cancelled; or left STARTED by a launcher on this host that is gone (then it is
    marked failed, so that the UI does not show a dead run as running)."""
    if run.status in UNFINISHED:
        return True
    host, _, pid = run.tags.get(LAUNCHER_TAG, ":").partition(":")
    if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
        return False
    instance.report_run_failed(run, message=f"its launcher (pid {pid}) is gone: continued by a new run")
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(instance: dg.DagsterInstance, settings: Settings, backfill: Backfill, process: subprocess.Popen,
           sessions: int, interval_s: float) -> None:
    store = CandleStore(settings.domain_store_url)
    store.create_schema()  # the run's steps migrate it too; the progress is read before they start
    records = ChunkRecords(store.engine)
    started, shown, baseline = time.monotonic(), None, None
    while True:
        ended = process.poll() is not None
        run = _latest_run(instance, backfill.key)
        if run is not None:
            done = records.sessions_done(root_run_id(run))
            slowest = min(done.values(), default=0)
            baseline = slowest if baseline is None else baseline
            line = progress_line(slowest, len(done), records.totals(root_run_id(run)).rows_written, sessions,
                                 time.monotonic() - started, slowest - baseline)
            if line != shown:
                print(line, flush=True)
                shown = line
        if ended:
            return
        time.sleep(interval_s)


def progress_line(slowest: int, steps: int, rows: int, sessions: int, elapsed: float, run_here: int) -> str:
    """Sessions the slowest step has finished of ``sessions``, rows, and the time left at the rate
    of the ``run_here`` sessions this launch ran in ``elapsed`` seconds."""
    left = f", about {elapsed / run_here * (sessions - slowest):.0f} s left" if run_here and slowest < sessions else ""
    return f"{slowest} of {sessions} sessions done by every step ({steps} started), {rows} rows, {elapsed:.0f} s{left}"


def backfill_symbols(universe: Sequence[str], symbols: Sequence[str]) -> tuple[str, ...]:
    """The symbols given (known ones), else the whole universe."""
    from candleflow.market.symbols import SymbolError, require_known

    chosen = require_known(symbols, universe) if symbols else list(universe)
    if not chosen:
        raise SymbolError("the universe is empty: add symbols with `candleflow universe add`")
    return tuple(chosen)
