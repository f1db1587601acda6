"""Keep the task tracking rows true when runs end in ways the asset code never sees.

A failed run (a crashed step, a killed worker that Dagster noticed) and a canceled run leave rows
PENDING or PROCESSING; these sensors close them. The reconciler schedule catches what no sensor
sees (a worker killed without Dagster noticing, a sensor that raised): PROCESSING rows whose run is
finished or gone, or whose heartbeat is stale. Re-queued rows (attempts left) get a new run that
continues the same rows (tag candleflow/root_run_id) over the root run's window. The retention job
deletes old COMPLETED rows.
"""

from datetime import UTC, datetime

import dagster as dg

from candleflow.assets.partitions import ROOT_RUN_TAG
from candleflow.jobs import market_data_job
from candleflow.jobs.sharded import market_data_retry_config
from candleflow.resources import StoreResource
from candleflow.tracking.queries import get_task, open_task_ids
from candleflow.tracking.reconcile import reconcile
from candleflow.tracking.retention import delete_completed_older_than
from candleflow.tracking.service import TrackingService

HEARTBEAT_TIMEOUT_S = 15 * 60


def _run_is_finished(instance: dg.DagsterInstance):
    def finished(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is None or run.is_finished
    return finished


# No monitored_jobs: runs launched from the asset graph run as Dagster's implicit asset job, not
# market_data, and their tracking rows need closing as much as any other run's.
@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Fails (and re-queues, attempts permitting) the tracking rows a "
                       "failed run left PENDING or PROCESSING, whichever job the run was.")
def tracking_on_run_failure(context: dg.RunFailureSensorContext, store: StoreResource):
    run_id = context.dagster_run.run_id
    try:
        with store.connected() as candle_store:
            report = reconcile(candle_store.engine, datetime.now(UTC), HEARTBEAT_TIMEOUT_S,
                               _run_is_finished(context.instance))
        context.log.info(f"run {run_id} failed: {len(report.failed)} rows failed, "
                         f"{len(report.requeued)} re-queued")
    except Exception as exc:  # never raise: the sensor's cursor would skip this run for good
        context.log.error(f"could not close tracking rows of run {run_id}: {exc}")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Marks CANCELLED the tracking rows a canceled run (of any job) "
                      "left PENDING or PROCESSING.")
def tracking_on_run_canceled(context: dg.RunStatusSensorContext, store: StoreResource):
    run_id = context.dagster_run.run_id
    try:
        with store.connected() as candle_store:
            service = TrackingService(candle_store.engine)
            for domain, ids in open_task_ids(candle_store.engine, run_id).items():
                service.cancel(domain, ids, f"run {run_id} was canceled")
    except Exception as exc:  # never raise, as above
        context.log.error(f"could not cancel tracking rows of run {run_id}: {exc}")


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
                           _run_is_finished(context.instance))
        requests = requeue_requests(context.instance, candle_store.engine, report)
    if not requests:
        return dg.SkipReason(f"{len(report.failed)} stale rows failed, none to re-run")
    return requests


class RetentionConfig(dg.Config):
    days: int = 30


@dg.op(description="Deletes COMPLETED tracking rows older than `days` days.")
def delete_old_completed_tasks(context: dg.OpExecutionContext, config: RetentionConfig,
                               store: StoreResource) -> None:
    with store.connected() as candle_store:
        deleted = delete_completed_older_than(candle_store.engine, days=config.days)
    context.log.info(f"deleted COMPLETED rows older than {config.days} days: {deleted}")
    context.add_output_metadata({"deleted": dg.MetadataValue.json(deleted)})


@dg.job(description="Deletes COMPLETED task tracking rows older than `days` days (default 30).")
def tracking_retention():
    delete_old_completed_tasks()


tracking_retention_daily = dg.ScheduleDefinition(
    name="tracking_retention_daily", job=tracking_retention, cron_schedule="0 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="03:00 UTC daily: the tracking_retention job deletes COMPLETED task tracking rows older "
    "than 30 days.")
