"""Close the task tracking rows of runs that end in ways the asset code never sees.

A failed run (a crashed step, a killed worker that Dagster noticed) and a canceled run leave rows
PENDING or PROCESSING; these sensors close them (the reconciler, ``reconciler.py``, catches what
they miss). Run status sensors, not declarative automation: they react to a run's end, which no
automation condition observes, and launch no runs.
"""

from datetime import UTC, datetime

import dagster as dg

from candleflow.defs.tracking.reconciler import HEARTBEAT_TIMEOUT_S, run_is_finished
from candleflow.resources import StoreResource
from candleflow.tracking.queries import open_task_ids
from candleflow.tracking.reconcile import reconcile
from candleflow.tracking.service import TrackingService


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
                               run_is_finished(context.instance))
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
