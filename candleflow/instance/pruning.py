"""Clean-up of old event rows: finished runs older than N days are deleted with their events.

Dagster keeps every run and every event row forever (``dagster run wipe`` deletes all runs; ``dagster
run delete`` one run at a time). A universe run writes about 10,000 event rows, so the event log
grows by millions of rows a year. This deletes the runs that finished (succeeded, failed or were
canceled) and were last updated before the cut-off, through ``DagsterInstance.delete_run`` (the run,
its tags and its event rows). Runs still queued or in progress are never touched.

What goes with them: their logs, and the materialization and check events they wrote, so the asset
history shows only the kept runs, and a symbol whose latest materialization is older than the
cut-off shows as missing until it is materialized again (the domain store keeps all its data).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def finished_runs_before(instance: dg.DagsterInstance, cutoff: datetime) -> list[str]:
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=FINISHED, updated_before=cutoff))
    return [record.dagster_run.run_id for record in records]


def prune_runs(instance: dg.DagsterInstance, older_than_days: float, now: datetime | None = None,
               dry_run: bool = False) -> list[str]:
    """Ids of the finished runs last updated more than ``older_than_days`` ago; deleted unless
    ``dry_run``."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    run_ids = finished_runs_before(instance, cutoff)
    if not dry_run:
        for run_id in run_ids:
            instance.delete_run(run_id)
    return run_ids
