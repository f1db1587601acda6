"""Guarded, set-based status transitions of the task tracking tables.

``TrackingService(engine)`` serves every domain. Each call is one transaction and, per call, one
statement per table (chunked only beyond ``CHUNK`` rows), so it stays cheap for 2,500 partitions.

Transitions (anything else is refused, not an error; the result says how many were refused)::

    create    -> PENDING                (INSERT ... ON CONFLICT (root_run_id, step_key, partition_key)
                                         DO NOTHING: an existing row keeps its status)
    start     PENDING -> PROCESSING     (attempts += 1, run_id := the current run)
    progress  PROCESSING -> PROCESSING  (items counts, heartbeat)
    complete  PROCESSING -> COMPLETED
    fail      PROCESSING -> FAILED
    cancel    PENDING | PROCESSING -> CANCELLED
    retry     FAILED -> PENDING         (only while attempts < max_attempts)

COMPLETED and CANCELLED never move. Every UPDATE carries ``WHERE status IN (allowed from-states)``,
so a duplicate or late event (a second ``complete``, a ``start`` after ``complete``, a ``fail``
after ``complete``) changes nothing, and a write repeated after a lost connection is harmless.

Rows are addressed either by id (``int``) or by ``TaskKey(root_run_id, step_key, partition_key)``;
one call uses one kind. Per-row values (rows written, spans, error messages) come as mappings keyed
the same way.

A write whose connection is cut (Postgres ``pg_terminate_backend``: SQLSTATE 57P01, or any error
SQLAlchemy classifies as a disconnect) is retried once on a fresh pool. Any other database error,
or a second disconnect, raises ``TrackingWriteError`` naming the operation, the table and the
database's reason; the transaction is rolled back, so nothing of that call was written. (If the
connection died after the server committed, the retried guarded UPDATE finds the rows already moved
and reports them as refused: the status is right, only the count says "refused".)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError

from candleflow.store.dialects import dialect_of
from candleflow.tracking.models import TaskStatus, UTCDateTime, model_for, utcnow

log = logging.getLogger(__name__)

CHUNK = 4000  # rows per UPDATE statement: <= 6 parameters a row stays under SQLite's 32,766
MAX_ERROR_CHARS = 20_000
DISCONNECT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})

T = TypeVar("T")


class TaskKey(NamedTuple):
    """The idempotency key of a task row."""

    root_run_id: str
    step_key: str
    partition_key: str


Ref = int | TaskKey


class TrackingWriteError(RuntimeError):
    """The database refused a tracking write; the transaction was rolled back."""

    def __init__(self, operation: str, table: str, reason: str, sqlstate: str | None = None):
        self.operation = operation
        self.table = table
        self.reason = reason
        self.sqlstate = sqlstate
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        super().__init__(f"task tracking {operation} on {table} failed, nothing written: {reason}{code}")


@dataclass(frozen=True)
class TransitionResult:
    """What one guarded transition did: ``changed_ids`` moved; the rest were refused (their status
    did not allow the move, or no such row exists)."""

    operation: str
    domain: str
    requested: int
    changed_ids: list[int] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changed_ids)

    @property
    def refused(self) -> int:
        return self.requested - len(self.changed_ids)

    def __str__(self) -> str:
        return f"{self.operation} {self.domain}: {self.changed} changed, {self.refused} refused"


def _reason(exc: DBAPIError) -> tuple[str, str | None]:
    orig = exc.orig
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return message, sqlstate


def is_disconnect(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "pgcode", None) or ""
    return sqlstate in DISCONNECT_SQLSTATES or sqlstate.startswith("08")


class TrackingService:
    """Create and move task rows of every domain (``candleflow.tracking.models.DOMAINS``)."""

    def __init__(self, engine: Engine, *, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self._now = now

    # -- plumbing -------------------------------------------------------------------------------

    def _write(self, operation: str, table: str, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction; once more on a fresh pool if the connection was cut."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                reason, sqlstate = _reason(exc)
                if attempt == 1 and is_disconnect(exc):
                    log.warning("task tracking %s on %s lost its connection (%s, SQLSTATE %s); "
                                "retrying once", operation, table, reason, sqlstate)
                    self.engine.dispose()
                    continue
                raise TrackingWriteError(operation, table, reason, sqlstate) from exc
        raise AssertionError("unreachable")

    def _bind(self, conn: Connection, value: Any) -> Any:
        if isinstance(value, datetime):
            # exactly what SQLAlchemy would bind (SQLite: fixed-width naive UTC text)
            dialect = conn.dialect
            return UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(value)
        return value

    def _update(self, operation: str, domain: str, refs: Iterable[Ref], *, allowed: Sequence[str],
                assignments: Mapping[str, str], per_row: Mapping[str, Callable[[Ref], Any]] | None = None,
                params: Mapping[str, Any] | None = None, extra_where: Sequence[str] = ()) -> TransitionResult:
        """One guarded ``UPDATE ... FROM (VALUES ...)`` per chunk of refs
        (``StoreDialect.update_from_values``).

        ``assignments``: column -> SQL expression; ``t`` is the table, ``v`` the VALUES rows (``v.k_*``
        the key, ``v.<name>`` each ``per_row`` value), ``%(name)s`` a shared parameter of ``params``.
        """
        model = model_for(domain)
        table = model.__tablename__
        refs = _unique_refs(refs)
        if not refs:
            return TransitionResult(operation, domain, 0, [])
        per_row = dict(per_row or {})
        by_id = isinstance(refs[0], int)
        key_cols = ["k_id"] if by_id else ["k_root", "k_step", "k_part"]
        value_cols = key_cols + list(per_row)
        match = ("t.id = v.k_id" if by_id else
                 "t.root_run_id = v.k_root AND t.step_key = v.k_step AND t.partition_key = v.k_part")
        statuses = ", ".join(f"'{TaskStatus(s).value}'" for s in allowed)
        where = " AND ".join([match, f"t.status IN ({statuses})", *extra_where])
        set_sql = ", ".join(f'"{col}" = {expr}' for col, expr in assignments.items())

        def work(conn: Connection) -> list[int]:
            dialect = dialect_of(conn)
            shared = {name: self._bind(conn, value) for name, value in (params or {}).items()}
            changed: list[int] = []
            for start in range(0, len(refs), CHUNK):
                rows = [([ref] if by_id else list(ref)) + [self._bind(conn, fn(ref)) for fn in per_row.values()]
                        for ref in refs[start:start + CHUNK]]
                sql, values = dialect.update_from_values(table, value_cols, rows, set_sql, where, shared)
                changed.extend(r[0] for r in conn.exec_driver_sql(sql, values).fetchall())
            return changed

        changed = self._write(operation, table, work)
        result = TransitionResult(operation, domain, len(refs), sorted(changed))
        log.debug("%s", result)
        return result

    # -- create ---------------------------------------------------------------------------------

    def create(self, domain: str, *, run_id: str, root_run_id: str | None = None, step_key: str,
               partition_keys: Sequence[str], symbol_of: Callable[[str], str | None] | None = None,
               interval: str | None = None, max_attempts: int = 3,
               metadata: Mapping[str, Any] | None = None) -> list[int]:
        """One PENDING row per partition (one transaction); ids in the order of ``partition_keys``.

        Rows that already exist for ``(root_run_id, step_key, partition_key)`` are left exactly as
        they are (whatever their status) and their ids returned: creating twice is harmless.
        ``root_run_id`` defaults to ``run_id`` (a run that is not a retry). ``symbol_of`` maps a
        partition key to the symbol column (default: the key itself when it fits 16 characters).
        """
        model = model_for(domain)
        table = model.__table__
        root_run_id = root_run_id or run_id
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        keys = list(dict.fromkeys(partition_keys))
        symbol_of = symbol_of or _default_symbol
        now = self._now()
        meta = dict(metadata) if metadata is not None else None
        rows = [
            {"status": TaskStatus.PENDING.value, "created_at": now, "updated_at": now, "attempts": 0,
             "max_attempts": max_attempts, "run_id": run_id, "root_run_id": root_run_id,
             "step_key": step_key, "partition_key": key, "symbol": symbol_of(key), "interval": interval,
             "metadata_json": meta, "rows_written": 0}
            for key in keys
        ]

        def work(conn: Connection) -> dict[str, int]:
            if rows:
                # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs
                # ("insertmanyvalues"); without it ON CONFLICT falls back to row-by-row executemany.
                stmt = dialect_of(conn).insert_skipping_existing(
                    table, ["root_run_id", "step_key", "partition_key"]).returning(table.c.id)
                inserted = len(conn.execute(stmt, rows).all())
                log.debug("create %s: %d new rows, %d existed", domain, inserted, len(rows) - inserted)
            found = conn.execute(
                select(table.c.partition_key, table.c.id)
                .where(table.c.root_run_id == root_run_id, table.c.step_key == step_key)
            ).all()
            return {p: i for p, i in found}

        ids = self._write("create", model.__tablename__, work)
        return [ids[key] for key in partition_keys]

    def lookup(self, domain: str, root_run_id: str, step_key: str,
               partition_keys: Sequence[str] | None = None) -> dict[str, int]:
        """partition_key -> id of the rows of one step of one run chain."""
        table = model_for(domain).__table__
        with self.engine.connect() as conn:
            found = dict(conn.execute(
                select(table.c.partition_key, table.c.id)
                .where(table.c.root_run_id == root_run_id, table.c.step_key == step_key)
            ).all())
        if partition_keys is None:
            return found
        return {k: found[k] for k in partition_keys if k in found}

    # -- transitions ----------------------------------------------------------------------------

    def start(self, domain: str, refs: Iterable[Ref], run_id: str) -> TransitionResult:
        """PENDING -> PROCESSING: attempts + 1, started_at and heartbeat_at now, run_id := run_id."""
        return self._update(
            "start", domain, refs, allowed=[TaskStatus.PENDING],
            assignments={"status": "'PROCESSING'", "attempts": "t.attempts + 1", "started_at": "%(now)s",
                         "heartbeat_at": "%(now)s", "updated_at": "%(now)s", "run_id": "%(run_id)s",
                         "completed_at": "NULL", "error_message": "NULL", "items_completed": "NULL"},
            params={"now": self._now(), "run_id": run_id})

    def progress(self, domain: str, refs: Iterable[Ref], completed: int | Mapping[Ref, int],
                 total: int | Mapping[Ref, int] | None = None) -> TransitionResult:
        """Item counts of PROCESSING rows; also their heartbeat. A count never goes backwards."""
        return self._update(
            "progress", domain, refs, allowed=[TaskStatus.PROCESSING],
            assignments={
                "items_completed": ("CASE WHEN t.items_completed IS NULL OR CAST(v.done AS INTEGER) > "
                                    "t.items_completed THEN CAST(v.done AS INTEGER) ELSE t.items_completed END"),
                "items_total": "COALESCE(CAST(v.total AS INTEGER), t.items_total)",
                "heartbeat_at": "%(now)s", "updated_at": "%(now)s"},
            per_row={"done": _getter(completed, 0, int), "total": _getter(total, None, int)},
            params={"now": self._now()})

    def heartbeat(self, domain: str, refs: Iterable[Ref]) -> TransitionResult:
        """Mark PROCESSING rows alive (the reconciler fails rows whose heartbeat is too old)."""
        return self._update("heartbeat", domain, refs, allowed=[TaskStatus.PROCESSING],
                            assignments={"heartbeat_at": "%(now)s", "updated_at": "%(now)s"},
                            params={"now": self._now()})

    def complete(self, domain: str, refs: Iterable[Ref], rows_written: int | Mapping[Ref, int] = 0,
                 span: tuple[int | None, int | None] | Mapping[Ref, tuple[int | None, int | None]] | None = None,
                 ) -> TransitionResult:
        """PROCESSING -> COMPLETED with rows written and the (first, last) bar written per row."""
        span_of = _getter(span, None, tuple)
        return self._update(
            "complete", domain, refs, allowed=[TaskStatus.PROCESSING],
            assignments={"status": "'COMPLETED'", "completed_at": "%(now)s", "heartbeat_at": "%(now)s",
                         "updated_at": "%(now)s", "rows_written": "CAST(v.rows_w AS BIGINT)",
                         "span_start": "COALESCE(CAST(v.span_s AS BIGINT), t.span_start)",
                         "span_end": "COALESCE(CAST(v.span_e AS BIGINT), t.span_end)"},
            per_row={"rows_w": _getter(rows_written, 0, int),
                     "span_s": lambda r: _span_part(span_of(r), 0),
                     "span_e": lambda r: _span_part(span_of(r), 1)},
            params={"now": self._now()})

    def fail(self, domain: str, refs: Iterable[Ref], error_messages: str | Mapping[Ref, str], *,
             only_run_id: str | None = None, heartbeat_before: datetime | None = None) -> TransitionResult:
        """PROCESSING -> FAILED with an error message per row (or one for all).

        ``only_run_id`` / ``heartbeat_before`` narrow the guard further (the reconciler uses them so
        that a row restarted or heartbeating since it was found stale is left alone).
        """
        extra: list[str] = []
        params: dict[str, Any] = {"now": self._now()}
        if only_run_id is not None:
            extra.append("t.run_id = %(only_run)s")
            params["only_run"] = only_run_id
        if heartbeat_before is not None:
            extra.append("(t.heartbeat_at IS NULL OR t.heartbeat_at < %(hb_before)s)")
            params["hb_before"] = heartbeat_before
        return self._update(
            "fail", domain, refs, allowed=[TaskStatus.PROCESSING],
            assignments={"status": "'FAILED'", "error_message": "CAST(v.msg AS TEXT)",
                         "completed_at": "%(now)s", "updated_at": "%(now)s"},
            per_row={"msg": lambda r: _getter(error_messages, "failed", str)(r)[:MAX_ERROR_CHARS]},
            params=params, extra_where=extra)

    def cancel(self, domain: str, refs: Iterable[Ref], reason: str) -> TransitionResult:
        """PENDING | PROCESSING -> CANCELLED; the reason goes to error_message."""
        return self._update(
            "cancel", domain, refs, allowed=[TaskStatus.PENDING, TaskStatus.PROCESSING],
            assignments={"status": "'CANCELLED'", "error_message": "%(reason)s", "completed_at": "%(now)s",
                         "updated_at": "%(now)s"},
            params={"now": self._now(), "reason": str(reason)[:MAX_ERROR_CHARS]})

    def retry(self, domain: str, refs: Iterable[Ref]) -> TransitionResult:
        """FAILED -> PENDING while attempts < max_attempts; ``changed_ids`` are the re-queued rows.

        The last error message stays until the row is started again.
        """
        return self._update(
            "retry", domain, refs, allowed=[TaskStatus.FAILED],
            assignments={"status": "'PENDING'", "completed_at": "NULL", "updated_at": "%(now)s"},
            params={"now": self._now()}, extra_where=["t.attempts < t.max_attempts"])


# -- helpers ------------------------------------------------------------------------------------


def _default_symbol(partition_key: str) -> str | None:
    return partition_key if len(partition_key) <= 16 else None


def _unique_refs(refs: Iterable[Ref]) -> list[Ref]:
    if isinstance(refs, (int, TaskKey)):
        refs = [refs]
    out = list(dict.fromkeys(refs))
    if not out:
        return out
    if all(isinstance(r, TaskKey) for r in out):
        return out
    if all(isinstance(r, int) and not isinstance(r, bool) for r in out):
        return out
    if all(isinstance(r, tuple) and len(r) == 3 for r in out):
        return [TaskKey(*r) for r in out]
    raise TypeError("refs must be all ints (ids) or all TaskKey(root_run_id, step_key, partition_key)")


def _getter(value: Any, default: Any, kind: type) -> Callable[[Ref], Any]:
    """A per-ref value: a mapping is looked up (missing -> default), anything else is shared."""
    if isinstance(value, Mapping):
        def get(ref: Ref) -> Any:
            got = value.get(ref, default)  # a TaskKey equals (and hashes like) the plain tuple
            return None if got is None else (got if kind is tuple else kind(got))
        return get
    shared = None if value is None else (value if kind is tuple else kind(value))
    return lambda _ref: shared


def _span_part(span: tuple | None, index: int) -> int | None:
    if span is None:
        return None
    part = span[index]
    return None if part is None else int(part)

