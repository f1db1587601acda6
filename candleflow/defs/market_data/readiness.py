"""Tell consumers what is new: one outbox line per (run, asset) for new indicator values and signals.

``signals_ready_sensor`` reads the materializations of ``indicators`` and ``scan_signals`` stored
after its cursor and appends, for each finished run, one JSON line per asset to
``$CANDLEFLOW_HOME/outbox/readiness.jsonl``: the run, the asset, the symbols materialized, the rows
per symbol, and per interval the first and last bar written (metadata ``changed_bars``; for runs
without it, ``first_bar``/``last_bar`` under the interval ``"*"``).

A plain sensor over the event log, not a ``multi_asset_sensor``: a universe run materializes
2,500 partitions per asset at once, and the multi-asset cursor keeps at most 25 unconsumed
partitioned events. The cursor is, per asset, the storage id up to which every record has been
handled, and the runs above it already written: a run's line is written once it has finished (its
materializations arrive in batches while it runs), so a running run holds the mark back and the
runs after it are not written twice meanwhile.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from candleflow.environment import home_dir
from candleflow.pipeline.registry import INDICATORS, SCAN_SIGNALS

MONITORED_ASSETS = (INDICATORS.asset_key, SCAN_SIGNALS.asset_key)
#: Records read per asset per tick: a backlog (a sensor started after a busy day) drains over
#: ticks. A run with more partitions than this (a universe over 20,000 symbols) would never fit.
MAX_RECORDS_PER_TICK = 20_000
_PAGE = 1_000


def outbox_path() -> Path:
    return home_dir() / "outbox" / "readiness.jsonl"


@dataclass
class AssetMark:
    """Every record of the asset up to ``storage_id`` is handled; so are the runs in ``written``."""

    storage_id: int = 0
    written: set[str] = field(default_factory=set)


@dataclass
class ReadinessCursor:
    marks: dict[str, AssetMark]

    @classmethod
    def parse(cls, cursor: str | None) -> "ReadinessCursor":
        saved = json.loads(cursor) if cursor else {}
        return cls({asset: AssetMark(saved[asset]["storage_id"], set(saved[asset]["written"]))
                    if asset in saved else AssetMark() for asset in MONITORED_ASSETS})

    def serialize(self) -> str:
        return json.dumps({asset: {"storage_id": mark.storage_id, "written": sorted(mark.written)}
                           for asset, mark in self.marks.items()})


def _records_after(instance: dg.DagsterInstance, asset: str, storage_id: int) -> tuple[list, bool]:
    """Materialization records of ``asset`` after ``storage_id``, oldest first, and whether more
    remain beyond ``MAX_RECORDS_PER_TICK``."""
    records, page_cursor, more = [], None, True
    while more and len(records) < MAX_RECORDS_PER_TICK:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_storage_id=storage_id or None),
            limit=_PAGE, cursor=page_cursor, ascending=True)
        records += page.records
        page_cursor, more = page.cursor, page.has_more
    return records, more


def _by_run(records: Sequence) -> dict[str, list]:
    runs: dict[str, list] = {}
    for record in records:
        runs.setdefault(record.run_id, []).append(record)
    return runs


def _metadata_value(metadata, name: str):
    entry = metadata.get(name)
    return None if entry is None else entry.value


def readiness_line(run_id: str, asset: str, records: Sequence) -> dict:
    """The outbox entry of one run's materializations of one asset."""
    metadata = records[-1].asset_materialization.metadata
    changed = _metadata_value(metadata, "changed_bars")
    if isinstance(changed, str):
        changed = json.loads(changed)
    if changed is None and "first_bar" in metadata:
        changed = {"*": [_metadata_value(metadata, "first_bar"), _metadata_value(metadata, "last_bar")]}
    rows = {r.partition_key: _metadata_value(r.asset_materialization.metadata, "rows") for r in records}
    return {
        "run_id": run_id,
        "asset": asset,
        "symbols": sorted(rows),
        "rows_by_symbol": {symbol: n for symbol, n in sorted(rows.items()) if n},
        "changed_bars": changed or {},
        "materialized_at": datetime.fromtimestamp(records[-1].timestamp, UTC).isoformat(timespec="seconds"),
        "storage_ids": [records[0].storage_id, records[-1].storage_id],
    }


def append_lines(path: Path, lines: Iterable[dict]) -> int:
    """Append ``lines`` as JSON lines in one write; returns how many."""
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    if text:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as outbox:
            outbox.write(text)
    return text.count("\n")


def _finished_runs(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> set[str]:
    """Of ``run_ids``, those that have finished, or are gone (deleted: nothing more will come)."""
    wanted = set(run_ids)
    if not wanted:  # an empty run_ids filter would match every run
        return wanted
    running = {run.run_id for run in instance.get_runs(dg.RunsFilter(run_ids=list(wanted)))
               if not run.is_finished}
    return wanted - running


@dg.sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Appends one JSON line per finished run and asset (indicators, scan_signals) to "
    "$CANDLEFLOW_HOME/outbox/readiness.jsonl: symbols, rows per symbol, and per interval the first "
    "and last bar written. Launches no runs.",
)
def signals_ready_sensor(context: dg.SensorEvaluationContext):
    cursor = ReadinessCursor.parse(context.cursor)
    lines = []
    for asset, mark in cursor.marks.items():
        records, truncated = _records_after(context.instance, asset, mark.storage_id)
        runs = _by_run(records)
        finished = _finished_runs(context.instance, runs)
        if truncated:  # the last run's records may go on beyond this tick's read
            finished.discard(records[-1].run_id)
        for run_id, run_records in runs.items():
            if run_id in finished and run_id not in mark.written:
                lines.append(readiness_line(run_id, asset, run_records))
                mark.written.add(run_id)
        held = [run[0].storage_id for run_id, run in runs.items() if run_id not in finished]
        if records:
            mark.storage_id = min(held) - 1 if held else records[-1].storage_id
        # forget written runs once the mark has passed them (unread ones lie beyond it)
        mark.written = {run_id for run_id in mark.written
                        if run_id not in runs or runs[run_id][-1].storage_id > mark.storage_id}
    written = append_lines(outbox_path(), lines)
    return dg.SensorResult(cursor=cursor.serialize(),
                           skip_reason=None if written else "no newly finished runs")
