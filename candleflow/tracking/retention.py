"""Retention: delete COMPLETED task rows older than N days (seed design: "completed tasks > 30 days"),
and the ``run_chunks`` rows of chunks finished as long ago."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete

from candleflow.tracking.models import DOMAINS, RunChunk, TaskStatus, utcnow


def delete_completed_older_than(engine: Engine, days: float = 30, now: datetime | None = None
                                ) -> dict[str, int]:
    """Delete COMPLETED rows whose completed_at is more than ``days`` before ``now`` (default: the
    current UTC time), in every domain, and the chunks finished before then, in one transaction.
    Returns rows deleted per domain (and ``run_chunks``).

    FAILED, CANCELLED, PENDING and PROCESSING rows are kept: they are what someone looks into.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    cutoff = (now or utcnow()) - timedelta(days=days)
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        for domain, model in DOMAINS.items():
            t = model.__table__
            result = conn.execute(delete(t).where(t.c.status == TaskStatus.COMPLETED.value,
                                                  t.c.completed_at < cutoff))
            deleted[domain] = result.rowcount
        chunks = RunChunk.__table__
        deleted[chunks.name] = conn.execute(delete(chunks).where(chunks.c.completed_at < cutoff)).rowcount
    return deleted
