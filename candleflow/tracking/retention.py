"""Retention: delete COMPLETED task rows older than N days (seed design: "completed tasks > 30 days")."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete

from candleflow.tracking.models import DOMAINS, TaskStatus, utcnow


def delete_completed_older_than(engine: Engine, days: float = 30, now: datetime | None = None
                                ) -> dict[str, int]:
    """Delete COMPLETED rows whose completed_at is more than ``days`` before ``now`` (default: the
    current UTC time), in every domain, in one transaction. Returns rows deleted per domain.

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
    return deleted
