"""The ``run_chunks`` rows: which chunks of sessions each step of a run chain has finished.

A step over a long window records each chunk as it finishes (``pipeline.tracked.TrackedChunks``); the
next attempt of the same run chain (a step retry, a re-execution from failure) skips those, so a
killed backfill continues from its first unfinished chunk. Recording twice keeps the first row.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, func, select

from candleflow.store.dialects import dialect_of
from candleflow.tracking.models import RunChunk, utcnow

TABLE = RunChunk.__table__


def symbols_key(stages: Sequence[str], symbols: Sequence[str]) -> str:
    """Which work of a step a chunk belongs to: a shard's stages and symbols, whatever order."""
    text = ",".join(stages) + "|" + ",".join(sorted(symbols))
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass(frozen=True)
class ChunkTotals:
    """Of a run chain, summed over its steps: finished chunks, their sessions and rows written."""

    chunks: int
    sessions: int
    rows_written: int


class ChunkRecords:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, *, root_run_id: str, step_key: str, key: str, run_id: str, first: date, last: date,
               sessions: int, symbols: int, rows_written: int, seconds: float,
               failures: Mapping[str, Mapping[str, str]]) -> None:
        row = {"root_run_id": root_run_id, "step_key": step_key, "symbols_key": key, "run_id": run_id,
               "first_session": first.isoformat(), "last_session": last.isoformat(), "sessions": sessions,
               "symbols": symbols, "rows_written": rows_written, "seconds": round(seconds, 3),
               "failures": {stage: dict(failed) for stage, failed in failures.items() if failed},
               "completed_at": utcnow()}
        with self.engine.begin() as conn:
            statement = dialect_of(conn).insert_skipping_existing(
                TABLE, ["root_run_id", "step_key", "symbols_key", "first_session"])
            conn.execute(statement, [row])

    def finished(self, root_run_id: str, step_key: str, key: str) -> dict[tuple[date, date], dict]:
        """(first, last session) -> failures of each chunk this work of the run chain finished."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(TABLE.c.first_session, TABLE.c.last_session, TABLE.c.failures).where(
                TABLE.c.root_run_id == root_run_id, TABLE.c.step_key == step_key,
                TABLE.c.symbols_key == key)).all()
        return {(date.fromisoformat(first), date.fromisoformat(last)): failures
                for first, last, failures in rows}

    def sessions_done(self, root_run_id: str) -> dict[str, int]:
        """Sessions finished by each work (step's stages and symbols) of the run chain."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(TABLE.c.symbols_key, func.sum(TABLE.c.sessions))
                                     .where(TABLE.c.root_run_id == root_run_id)
                                     .group_by(TABLE.c.symbols_key)).all())

    def totals(self, root_run_id: str) -> ChunkTotals:
        """What the steps of the run chain ``root_run_id`` have finished so far, summed."""
        with self.engine.connect() as conn:
            chunks, sessions, rows = conn.execute(
                select(func.count(), func.coalesce(func.sum(TABLE.c.sessions), 0),
                       func.coalesce(func.sum(TABLE.c.rows_written), 0))
                .where(TABLE.c.root_run_id == root_run_id)).one()
        return ChunkTotals(int(chunks), int(sessions), int(rows))
