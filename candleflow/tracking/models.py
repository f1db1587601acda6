"""Task tracking tables, one per domain (``{domain}_task_tracking``), SQLAlchemy 2 declarative.

Every table has the same base columns (``TaskTrackingMixin``) plus the candleflow domain columns
(symbol, interval, span, rows written). One row is one unit of work: one partition (symbol) of one
step of one Dagster run chain. ``(root_run_id, step_key, partition_key)`` is the idempotency key: a
run retry (new ``run_id``, same ``root_run_id``) works on the same rows instead of adding new ones.

Status flow (guarded in ``candleflow.tracking.service``)::

    PENDING -> PROCESSING -> COMPLETED | FAILED | CANCELLED
    PENDING -> CANCELLED
    FAILED  -> PENDING      (retry only, while attempts < max_attempts)

The migrations in ``candleflow/store/migrations/versions`` are the DDL of record; a test checks that
these models and the migrated schema do not differ.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, Float, Index, Integer, JSON, MetaData,
                        String, Text, TypeDecorator, UniqueConstraint, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from candleflow.store.dialects import dialect_of


class TaskStatus(str, enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def __str__(self) -> str:
        return self.value


STATUSES: tuple[str, ...] = tuple(s.value for s in TaskStatus)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    Postgres stores ``timestamptz``. On an engine without time zones (SQLite: ``naive_datetimes``
    of its ``StoreDialect``) the value is stored as naive UTC (SQLite: fixed-width text, so
    comparisons in SQL stay correct) and given ``tzinfo=UTC`` when read.
    Naive datetimes are refused on write: they are ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: tracking timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect_of(dialect).naive_datetimes else value

    def process_result_value(self, value: Any, dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # an aggregate that lost the column type on SQLite
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The tracking tables live in the domain store database but keep their own MetaData, so that
# ``candleflow.store.schema.metadata.create_all`` stays what it was.
tracking_metadata = MetaData()


class Base(DeclarativeBase):
    metadata = tracking_metadata


class TaskTrackingMixin:
    """Columns, constraints and indexes every ``{domain}_task_tracking`` table has."""

    __domain__: str

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=TaskStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow,
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow,
                                                 server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=3, server_default="3")
    run_id: Mapped[str] = mapped_column(String(64), nullable=False,
                                        comment="Dagster run that last started (or created) the task")
    root_run_id: Mapped[str] = mapped_column(String(64), nullable=False,
                                             comment="first run of the run-retry chain")
    step_key: Mapped[str] = mapped_column(String(255), nullable=False)
    partition_key: Mapped[str] = mapped_column(String(255), nullable=False)
    items_completed: Mapped[int | None] = mapped_column(Integer)
    items_total: Mapped[int | None] = mapped_column(Integer)
    metadata_json: Mapped[dict | None] = mapped_column(JSON, comment="parent task, dependencies")
    symbol: Mapped[str | None] = mapped_column(String(16))
    interval: Mapped[str | None] = mapped_column(String(4))
    span_start: Mapped[int | None] = mapped_column(BigInteger, comment="first bar written, epoch s")
    span_end: Mapped[int | None] = mapped_column(BigInteger, comment="last bar written, epoch s")
    rows_written: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        domain = cls.__domain__
        return (
            UniqueConstraint("root_run_id", "step_key", "partition_key", name=f"uq_{domain}_task_key"),
            CheckConstraint("status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')",
                            name=f"ck_{domain}_task_status"),
            Index(f"idx_{domain}_task_status", "status"),
            Index(f"idx_{domain}_task_dates", "created_at", "completed_at"),
            # job status looks rows up by run_id too (root_run_id is served by the unique key)
            Index(f"idx_{domain}_task_run", "run_id"),
        )

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} id={self.id} {self.status} {self.step_key}[{self.partition_key}] "
                f"run={self.run_id}>")


class CandleIngestTask(TaskTrackingMixin, Base):
    __domain__ = "candle_ingest"
    __tablename__ = "candle_ingest_task_tracking"


class DerivedBarsTask(TaskTrackingMixin, Base):
    __domain__ = "derived_bars"
    __tablename__ = "derived_bars_task_tracking"


class IndicatorsTask(TaskTrackingMixin, Base):
    __domain__ = "indicators"
    __tablename__ = "indicators_task_tracking"


class ScansTask(TaskTrackingMixin, Base):
    __domain__ = "scans"
    __tablename__ = "scans_task_tracking"


class RunChunk(Base):
    """One finished chunk of sessions of one step of a run chain (``candleflow.pipeline.chunks``):
    a later attempt of the chain skips it, and a backfill's progress is read from these rows."""

    __tablename__ = "run_chunks"
    __table_args__ = (UniqueConstraint("root_run_id", "step_key", "symbols_key", "first_session",
                                       name="uq_run_chunks_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    root_run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    step_key: Mapped[str] = mapped_column(String(255), nullable=False)
    symbols_key: Mapped[str] = mapped_column(String(40), nullable=False,
                                             comment="sha1 of the step's stages and symbols")
    run_id: Mapped[str] = mapped_column(String(64), nullable=False, comment="Dagster run that ran the chunk")
    first_session: Mapped[str] = mapped_column(String(10), nullable=False)
    last_session: Mapped[str] = mapped_column(String(10), nullable=False)
    sessions: Mapped[int] = mapped_column(Integer, nullable=False)
    symbols: Mapped[int] = mapped_column(Integer, nullable=False)
    rows_written: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seconds: Mapped[float] = mapped_column(Float, nullable=False)
    failures: Mapped[dict] = mapped_column(JSON, nullable=False, comment="stage -> symbol -> reason")
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


DOMAINS: dict[str, type[TaskTrackingMixin]] = {
    "candle_ingest": CandleIngestTask,
    "derived_bars": DerivedBarsTask,
    "indicators": IndicatorsTask,
    "scans": ScansTask,
}


class UnknownDomain(KeyError):
    """A domain name that is not in ``DOMAINS``."""

    def __init__(self, domain: object):
        super().__init__(domain)
        self.domain = domain

    def __str__(self) -> str:
        return f"unknown domain {self.domain!r}: expected one of {', '.join(DOMAINS)}"


def model_for(domain: str) -> type[TaskTrackingMixin]:
    try:
        return DOMAINS[domain]
    except (KeyError, TypeError):
        raise UnknownDomain(domain) from None
