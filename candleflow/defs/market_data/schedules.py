"""Run the whole universe once a day after the session close; skip exchange holidays.

A schedule, not declarative automation (``AutomationCondition.on_cron``): the run covers every
symbol as one partition range with the session as run config, and skips exchange holidays; an
automation condition launches runs per partition, without run config or the exchange calendar.
"""

import dagster as dg

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.defs.market_data.assets import market_data_pipeline
from candleflow.defs.market_data.jobs import market_data_job
from candleflow.resources import PipelineSettings


@dg.schedule(
    job=market_data_job,
    cron_schedule="5 16 * * 1-5",
    execution_timezone="America/New_York",
    description="16:05 New York on weekdays: one run over every symbol for the session that just "
    "closed, so that its scan signals are stored by 16:30 (the freshness policy of scan_signals). "
    "Skips days that are not trading sessions (holidays).",
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
        run_config={"ops": {market_data_pipeline.op.name: {"config": {"start": str(day),
                                                                       "end": str(day)}}}},
    )
