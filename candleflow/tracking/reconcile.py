"""Reconciler for rows left in PROCESSING.

Dagster hooks do not fire when a worker is killed and the default run launcher does not notice a
crashed run worker (FIELD-NOTES), so a task row can stay PROCESSING forever. ``reconcile`` finds
PROCESSING rows whose run is finished (or gone), or whose heartbeat is older than a timeout, marks
them FAILED with the reason and re-queues them (PENDING) while attempts < max_attempts. It uses the
service's guarded transitions, narrowed further so that a row that was restarted by another run or
heartbeated after it was found is left alone.

``run_is_finished(run_id) -> bool`` is supplied by the caller (e.g. a Dagster sensor: the run is
in a terminal state or the instance no longer knows it). It is called once per distinct run id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from candleflow.tracking.models import DOMAINS, TaskStatus
from candleflow.tracking.service import TrackingService

log = logging.getLogger(__name__)

RUN_FINISHED = "run_finished"
NO_HEARTBEAT = "no_heartbeat"


@dataclass(frozen=True)
class TaskRef:
    domain: str
    id: int
    partition_key: str
    run_id: str


@dataclass(frozen=True)
class StaleTask:
    domain: str
    id: int
    partition_key: str
    run_id: str
    kind: str  # RUN_FINISHED or NO_HEARTBEAT
    reason: str
    last_heartbeat: datetime | None

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.domain, self.id, self.partition_key, self.run_id)


@dataclass
class ReconcileReport:
    failed: list[TaskRef] = field(default_factory=list)
    requeued: list[TaskRef] = field(default_factory=list)
    left_alone: list[TaskRef] = field(default_factory=list)  # moved on since found (refused)
    unknown_runs: list[str] = field(default_factory=list)  # run_is_finished raised

    def to_dict(self) -> dict[str, Any]:
        return {"failed": [asdict(r) for r in self.failed], "requeued": [asdict(r) for r in self.requeued],
                "left_alone": [asdict(r) for r in self.left_alone], "unknown_runs": list(self.unknown_runs)}


def find_stale(engine: Engine, now: datetime, heartbeat_timeout_s: float,
               run_is_finished: Callable[[str], bool], *, _unknown: list[str] | None = None
               ) -> list[StaleTask]:
    """PROCESSING rows whose run is finished, or whose last heartbeat (else start) is older than
    ``heartbeat_timeout_s`` before ``now``. A finished run wins over a missing heartbeat."""
    cutoff = now - timedelta(seconds=heartbeat_timeout_s)
    verdicts: dict[str, bool] = {}

    def finished(run_id: str) -> bool:
        if run_id not in verdicts:
            try:
                verdicts[run_id] = bool(run_is_finished(run_id))
            except Exception:  # noqa: BLE001 - an unreachable run store must not fail tasks
                log.warning("run_is_finished(%r) raised; judging its tasks by heartbeat only", run_id,
                            exc_info=True)
                verdicts[run_id] = False
                if _unknown is not None:
                    _unknown.append(run_id)
        return verdicts[run_id]

    stale: list[StaleTask] = []
    with engine.connect() as conn:
        for domain, model in DOMAINS.items():
            t = model.__table__
            rows = conn.execute(
                select(t.c.id, t.c.partition_key, t.c.run_id, t.c.heartbeat_at, t.c.started_at,
                       t.c.updated_at)
                .where(t.c.status == TaskStatus.PROCESSING.value).order_by(t.c.id)).all()
            for row in rows:
                beat = row.heartbeat_at or row.started_at or row.updated_at
                if finished(row.run_id):
                    stale.append(StaleTask(domain, row.id, row.partition_key, row.run_id, RUN_FINISHED,
                                           f"run {row.run_id} finished while the task was PROCESSING", beat))
                elif beat is None or beat < cutoff:
                    age = int((now - beat).total_seconds()) if beat is not None else None
                    reason = f"no heartbeat for {age} s" if age is not None else "no heartbeat recorded"
                    stale.append(StaleTask(domain, row.id, row.partition_key, row.run_id, NO_HEARTBEAT,
                                           reason, beat))
    return stale


def reconcile(engine: Engine, now: datetime, heartbeat_timeout_s: float,
              run_is_finished: Callable[[str], bool]) -> ReconcileReport:
    """Fail the stale PROCESSING rows (reason in error_message), then re-queue those with attempts
    left. Returns the rows failed, re-queued, and found stale but moved on in the meantime."""
    report = ReconcileReport()
    stale = find_stale(engine, now, heartbeat_timeout_s, run_is_finished, _unknown=report.unknown_runs)
    if not stale:
        return report
    service = TrackingService(engine, now=lambda: now)
    cutoff = now - timedelta(seconds=heartbeat_timeout_s)
    groups: dict[tuple[str, str, str | None], list[StaleTask]] = defaultdict(list)
    for task in stale:
        groups[(task.domain, task.kind, task.run_id if task.kind == RUN_FINISHED else None)].append(task)
    failed_by_domain: dict[str, list[TaskRef]] = defaultdict(list)
    for (domain, kind, run_id), tasks in groups.items():
        refs = {t.id: t.ref for t in tasks}
        messages = {t.id: t.reason for t in tasks}
        if kind == RUN_FINISHED:
            result = service.fail(domain, list(refs), messages, only_run_id=run_id)
        else:
            result = service.fail(domain, list(refs), messages, heartbeat_before=cutoff)
        changed = set(result.changed_ids)
        for task_id, ref in refs.items():
            (report.failed if task_id in changed else report.left_alone).append(ref)
            if task_id in changed:
                failed_by_domain[domain].append(ref)
    for domain, refs in failed_by_domain.items():
        by_id = {r.id: r for r in refs}
        result = service.retry(domain, list(by_id))
        report.requeued.extend(by_id[i] for i in result.changed_ids)
    for name in ("failed", "requeued", "left_alone"):
        getattr(report, name).sort(key=lambda r: (r.domain, r.id))
    log.info("reconcile: %d failed, %d re-queued, %d left alone", len(report.failed), len(report.requeued),
             len(report.left_alone))
    return report
