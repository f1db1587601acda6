"""Run the whole universe once a day after the session close; skip exchange holidays."""

import dagster as dg

from candleflow.assets.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.jobs import market_data_job
from candleflow.resources import PipelineSettings


@dg.schedule(
    job=market_data_job,
    cron_schedule="30 16 * * 1-5",
    execution_timezone="America/New_York",
    description="16:30 New York on weekdays: one run over every symbol for the session that just "
    "closed. Skips days that are not trading sessions (holidays).",
)
def daily_after_close(context: dg.ScheduleEvaluationContext, settings: PipelineSettings):
    day = context.scheduled_execution_time.date()
    if not settings.sessions().is_session(day):
        return dg.SkipReason(f"{day} is not a trading session")
    symbols = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
    if not symbols:
        return dg.SkipReason("the universe is empty: add symbols with `candleflow universe add`")
    return dg.RunRequest(
        run_key=f"session-{day}",
        tags=partition_range_tags(symbols),
        run_config={"ops": {"market_data_pipeline": {"config": {"start": str(day), "end": str(day)}}}},
    )
