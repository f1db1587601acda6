"""Task tracking: one ``{domain}_task_tracking`` table per domain, guarded status transitions,
status queries, retention and a reconciler for rows left PROCESSING. Plain SQLAlchemy; no Dagster.
"""

from candleflow.tracking.models import DOMAINS, TaskStatus, UnknownDomain
from candleflow.tracking.service import TaskKey, TrackingService, TrackingWriteError, TransitionResult

__all__ = ["DOMAINS", "TaskKey", "TaskStatus", "TrackingService", "TrackingWriteError", "TransitionResult",
           "UnknownDomain"]
