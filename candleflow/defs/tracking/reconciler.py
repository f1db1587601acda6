"""The reconciler: every 5 minutes, PROCESSING rows whose run is finished or gone, or whose heartbeat
is stale, are FAILED; those with attempts left get a new run that continues the same rows (tag
candleflow/root_run_id) over the root run's window.

It catches what no run sensor sees (a worker killed without Dagster noticing, a sensor that raised).
"""

from datetime import UTC, datetime

import dagster as dg

from candleflow.dagster_steps.partitions import ROOT_RUN_TAG
from candleflow.defs.market_data.jobs import market_data_job
from candleflow.defs.market_data.sharded import market_data_retry_config
from candleflow.resources import StoreResource
from candleflow.tracking.queries import get_task
from candleflow.tracking.reconcile import reconcile

HEARTBEAT_TIMEOUT_S = 15 * 60


def run_is_finished(instance: dg.DagsterInstance):
    """Whether a run has finished, or is gone from the instance (the reconciler's test)."""
    def finished(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is None or run.is_finished
    return finished


def continuation_request(instance: dg.DagsterInstance, root_run_id: str, partition_key: str,
                         run_key: str | None = None) -> dg.RunRequest:
    """The ``market_data`` run of one symbol that continues the tracking rows of the run chain
    ``root_run_id``, over the root run's window (its run config; ``market_data_retry_config``).
    The reconciler launches it, and ``candleflow retry-failed`` executes it. A root run no longer
    in the instance (pruned) leaves its window unknown: the run covers the default one."""
    root = instance.get_run_by_id(root_run_id)
    return dg.RunRequest(run_key=run_key, partition_key=partition_key,
                         run_config=market_data_retry_config(root) if root else {},
                         tags={ROOT_RUN_TAG: root_run_id})


def requeue_requests(instance: dg.DagsterInstance, engine, report) -> list[dg.RunRequest]:
    """One run per re-queued symbol, continuing its run chain's tracking rows."""
    requests = {}
    for ref in report.requeued:
        task = get_task(engine, ref.domain, ref.id)
        root, attempts = task["root_run_id"], task["attempts"]
        requests[(root, ref.partition_key)] = continuation_request(
            instance, root, ref.partition_key, run_key=f"requeue:{root}:{ref.partition_key}:{attempts}")
    return list(requests.values())


@dg.schedule(job=market_data_job, cron_schedule="*/5 * * * *",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every 5 minutes: PROCESSING rows whose run is finished or gone, or whose "
             "heartbeat is older than 15 minutes, become FAILED with the reason; those with "
             "attempts left are re-queued and re-run.")
def tracking_reconciler(context: dg.ScheduleEvaluationContext, store: StoreResource):
    with store.connected() as candle_store:
        report = reconcile(candle_store.engine, datetime.now(UTC), HEARTBEAT_TIMEOUT_S,
                           run_is_finished(context.instance))
        requests = requeue_requests(context.instance, candle_store.engine, report)
    if not requests:
        return dg.SkipReason(f"{len(report.failed)} stale rows failed, none to re-run")
    return requests
