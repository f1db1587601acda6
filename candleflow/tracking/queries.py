"""Read side of task tracking: job status of a run chain, single tasks, lists, per-domain stats.

Every function returns JSON-ready dicts (timestamps as ISO 8601 UTC strings), so the status API and
the ``candleflow status`` CLI print the same payloads. Input validation lives here too
(``parse_*``), so both front ends refuse the same malformed input with the same message.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, or_, select

from candleflow.store.dialects import dialect_for_url
from candleflow.tracking.models import DOMAINS, STATUSES, TaskStatus, UnknownDomain, model_for

__all__ = ["InvalidArgument", "RunNotFound", "TaskNotFound", "UnknownDomain", "domain_stats", "get_task",
           "job_status", "list_tasks", "parse_domain", "parse_limit", "parse_offset", "parse_run_id",
           "parse_status", "parse_task_id"]

ERRORS_CAP = 100
MAX_LIMIT = 1000
#: Matched whole (``fullmatch``): ``re.match`` with "$" also accepts a trailing newline.
RUN_ID_RE = re.compile(r"[0-9a-f-]{8,64}")
TASK_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
MAX_TASK_ID = 2**31 - 1  # the id column is a 32-bit integer


class InvalidArgument(ValueError):
    """Malformed input (run id, task id, status, limit, offset)."""


class TaskNotFound(LookupError):
    def __init__(self, domain: str, task_id: int):
        super().__init__(f"no task {task_id} in domain {domain!r}")
        self.domain, self.task_id = domain, task_id


class RunNotFound(LookupError):
    def __init__(self, run_id: str):
        super().__init__(f"no tracked tasks for run {run_id!r}")
        self.run_id = run_id


# -- validation ---------------------------------------------------------------------------------


def parse_run_id(value: str) -> str:
    if not isinstance(value, str) or not RUN_ID_RE.fullmatch(value):
        raise InvalidArgument("malformed run id: expected 8-64 characters of 0-9, a-f and '-'")
    return value


def parse_task_id(value: str | int) -> int:
    text = str(value)
    if isinstance(value, bool) or not TASK_ID_RE.fullmatch(text):
        raise InvalidArgument("malformed task id: expected a positive integer")
    return int(text)


def parse_status(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise InvalidArgument(f"unknown status {value!r}: expected one of {', '.join(STATUSES)}")
    return value


def parse_domain(value: str) -> str:
    model_for(value)  # raises UnknownDomain
    return value


def parse_limit(value: str | int | None, default: int = 100) -> int:
    if value is None or value == "":
        return default
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidArgument(f"malformed limit: expected an integer from 1 to {MAX_LIMIT}")
    return int(text)


def parse_offset(value: str | int | None) -> int:
    if value is None or value == "":
        return 0
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise InvalidArgument("malformed offset: expected a non-negative integer")
    return int(text)


def missing_sqlite_store(url: str) -> str | None:
    """The database file a store URL names when it does not exist (a read-only tool must not
    create an empty database by connecting to it); None otherwise. Only SQLite has such a file."""
    dialect = dialect_for_url(url)
    return None if dialect is None else dialect.missing_database(url)


# -- helpers ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _min(values) -> Any:
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _max(values) -> Any:
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _zero_counts() -> dict[str, int]:
    return {s: 0 for s in STATUSES}


def derive_status(counts: dict[str, int]) -> str:
    """PROCESSING while anything is pending or processing; then FAILED if anything failed; then
    CANCELLED if anything was cancelled; COMPLETED only when every task completed."""
    if counts["PROCESSING"] or counts["PENDING"]:
        return TaskStatus.PROCESSING.value
    if counts["FAILED"]:
        return TaskStatus.FAILED.value
    if counts["CANCELLED"]:
        return TaskStatus.CANCELLED.value
    return TaskStatus.COMPLETED.value


def task_dict(domain: str, row) -> dict[str, Any]:
    data = dict(row._mapping)
    out: dict[str, Any] = {"domain": domain}
    for key, value in data.items():
        out[key] = _iso(value) if isinstance(value, datetime) else value
    started, completed = data.get("started_at"), data.get("completed_at")
    out["duration_s"] = (round((completed - started).total_seconds(), 6)
                         if started is not None and completed is not None else None)
    return out


# -- queries ------------------------------------------------------------------------------------


def job_status(engine: Engine, run_id: str) -> dict[str, Any]:
    """Status of the run chain ``run_id`` belongs to, over every domain.

    A row belongs to the chain when its ``root_run_id`` is the root of ``run_id``: rows are matched
    on ``run_id`` or ``root_run_id``, and their roots then select the whole chain, so asking for
    the first run or for any of its retries gives the same report. ``progress`` counts tasks:
    ``completed`` COMPLETED of ``total``; ``finished`` also counts FAILED and CANCELLED.
    """
    roots: set[str] = set()
    with engine.connect() as conn:
        for model in DOMAINS.values():
            t = model.__table__
            roots.update(conn.execute(
                select(t.c.root_run_id).where(or_(t.c.run_id == run_id, t.c.root_run_id == run_id))
                .distinct()).scalars())
        if not roots:
            raise RunNotFound(run_id)
        overall = _zero_counts()
        per_domain: dict[str, dict[str, int]] = {}
        stamps: dict[str, list] = {"first_created": [], "last_updated": [], "first_started": [],
                                   "last_completed": []}
        errors: list[dict[str, Any]] = []
        error_total = 0
        for domain, model in DOMAINS.items():
            t = model.__table__
            in_chain = t.c.root_run_id.in_(sorted(roots))
            rows = conn.execute(
                select(t.c.status, func.count(), func.min(t.c.created_at), func.max(t.c.updated_at),
                       func.min(t.c.started_at), func.max(t.c.completed_at))
                .where(in_chain).group_by(t.c.status)).all()
            if not rows:
                continue
            counts = _zero_counts()
            for status, n, created, updated, started, completed in rows:
                counts[status] = n
                overall[status] += n
                stamps["first_created"].append(created)
                stamps["last_updated"].append(updated)
                stamps["first_started"].append(started)
                stamps["last_completed"].append(completed)
            per_domain[domain] = {**counts, "total": sum(counts.values())}
            error_total += counts["FAILED"]
            if counts["FAILED"] and len(errors) < ERRORS_CAP:
                for row in conn.execute(
                        select(t.c.id, t.c.partition_key, t.c.step_key, t.c.run_id, t.c.attempts,
                               t.c.error_message)
                        .where(in_chain, t.c.status == TaskStatus.FAILED.value)
                        .order_by(t.c.id).limit(ERRORS_CAP - len(errors))):
                    errors.append({"domain": domain, "id": row.id, "partition_key": row.partition_key,
                                   "step_key": row.step_key, "run_id": row.run_id,
                                   "attempts": row.attempts, "error_message": row.error_message})
    total = sum(overall.values())
    completed = overall["COMPLETED"]
    finished = completed + overall["FAILED"] + overall["CANCELLED"]
    return {
        "run_id": run_id,
        "root_run_ids": sorted(roots),
        "status": derive_status(overall),
        "progress": {"completed": completed, "finished": finished, "total": total,
                     "percentage": round(100.0 * completed / total, 2) if total else 0.0},
        "counts": {"overall": {**overall, "total": total}, "domains": per_domain},
        "timestamps": {"first_created": _iso(_min(stamps["first_created"])),
                       "last_updated": _iso(_max(stamps["last_updated"])),
                       "first_started": _iso(_min(stamps["first_started"])),
                       "last_completed": _iso(_max(stamps["last_completed"]))},
        "errors": errors,
        "errors_total": error_total,
        "errors_truncated": error_total > len(errors),
    }


def get_task(engine: Engine, domain: str, task_id: int) -> dict[str, Any]:
    model = model_for(domain)
    t = model.__table__
    if not 1 <= int(task_id) <= MAX_TASK_ID:
        raise TaskNotFound(domain, task_id)
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.id == int(task_id))).first()
    if row is None:
        raise TaskNotFound(domain, task_id)
    return task_dict(domain, row)


def list_tasks(engine: Engine, domain: str, status: str | None = None, limit: int = 100,
               offset: int = 0) -> dict[str, Any]:
    """Tasks of a domain, newest first (by id), optionally of one status; with the matching total."""
    model = model_for(domain)
    t = model.__table__
    status = parse_status(status)
    limit = parse_limit(limit)
    offset = parse_offset(offset)
    where = [] if status is None else [t.c.status == status]
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
        rows = conn.execute(select(t).where(*where).order_by(t.c.id.desc()).limit(limit).offset(offset)).all()
    return {"domain": domain, "status": status, "limit": limit, "offset": offset, "total": total,
            "tasks": [task_dict(domain, r) for r in rows]}


def domain_stats(engine: Engine, domain: str) -> dict[str, Any]:
    """Counts by status, success/failure counts, and durations (completed_at - started_at, seconds)
    of COMPLETED tasks: p50/p90/p99 with linear interpolation (numpy's default), mean, max."""
    model = model_for(domain)
    t = model.__table__
    with engine.connect() as conn:
        counts = _zero_counts()
        for status, n in conn.execute(select(t.c.status, func.count()).group_by(t.c.status)):
            counts[status] = n
        spans = conn.execute(
            select(t.c.started_at, t.c.completed_at)
            .where(t.c.status == TaskStatus.COMPLETED.value, t.c.started_at.is_not(None),
                   t.c.completed_at.is_not(None))).all()
    durations = pd.Series([(c - s).total_seconds() for s, c in spans], dtype="float64")
    if durations.empty:
        duration = {"count": 0, "p50": None, "p90": None, "p99": None, "mean": None, "max": None}
    else:
        p50, p90, p99 = np.percentile(durations.to_numpy(), [50, 90, 99])
        duration = {"count": int(durations.size), "p50": round(float(p50), 6), "p90": round(float(p90), 6),
                    "p99": round(float(p99), 6), "mean": round(float(durations.mean()), 6),
                    "max": round(float(durations.max()), 6)}
    finished = counts["COMPLETED"] + counts["FAILED"]
    return {"domain": domain, "counts": {**counts, "total": sum(counts.values())},
            "success": counts["COMPLETED"], "failure": counts["FAILED"],
            "success_rate": round(counts["COMPLETED"] / finished, 6) if finished else None,
            "duration_s": duration}


def open_task_ids(engine: Engine, run_id: str) -> dict[str, list[int]]:
    """Ids of the PENDING or PROCESSING rows last touched by ``run_id``, per domain."""
    found: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for domain, model in DOMAINS.items():
            table = model.__table__
            ids = conn.execute(select(table.c.id).where(
                table.c.run_id == run_id,
                table.c.status.in_([TaskStatus.PENDING.value, TaskStatus.PROCESSING.value]))).scalars().all()
            if ids:
                found[domain] = list(ids)
    return found


def failed_partitions(engine: Engine, run_id: str) -> dict[str, list[str]]:
    """Partitions with a FAILED row in the run chain of ``run_id``: root run id -> partition keys."""
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for model in DOMAINS.values():
            t = model.__table__
            rows = conn.execute(select(t.c.root_run_id, t.c.partition_key).where(
                or_(t.c.run_id == run_id, t.c.root_run_id == run_id),
                t.c.status == TaskStatus.FAILED.value)).all()
            for root, partition in rows:
                found.setdefault(root, set()).add(partition)
    return {root: sorted(partitions) for root, partitions in found.items()}
