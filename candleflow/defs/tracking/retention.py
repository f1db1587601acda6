"""Retention: a daily job deletes COMPLETED tracking rows older than 30 days."""

import dagster as dg

from candleflow.dagster_steps.step import STORE_POOL
from candleflow.resources import StoreResource
from candleflow.tracking.retention import delete_completed_older_than


class RetentionConfig(dg.Config):
    days: int = 30


@dg.op(pool=STORE_POOL, description="Deletes COMPLETED tracking rows older than `days` days.")
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
