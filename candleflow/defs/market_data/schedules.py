"""Run the whole universe once a day after the session close; skip exchange holidays.

A schedule, not declarative automation (``AutomationCondition.on_cron``): the run is one
``market_data_universe`` run over every symbol (shards on every core) with the session as run
config, and skips exchange holidays; an automation condition launches runs per partition, without
run config or the exchange calendar.
"""

from datetime import timedelta

import dagster as dg

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
from candleflow.defs.market_data.assets import SESSIONS, SIGNALS_DUE
from candleflow.defs.market_data.sharded import market_data_universe_job, plan_shards
from candleflow.market.calendar import ExchangeSessions
from candleflow.resources import PipelineSettings

#: How long after the close the daily run starts: well before the signals are due (SIGNALS_DUE).
RUN_DELAY = timedelta(minutes=5)


def after_close_schedule(sessions: ExchangeSessions) -> dg.ScheduleDefinition:
    """``daily_after_close`` on the calendar of ``sessions``: ``RUN_DELAY`` after its typical
    close, in its time zone, on the days of the week its sessions close."""

    @dg.schedule(
        name="daily_after_close",
        job=market_data_universe_job,
        cron_schedule=sessions.cron_after_close(RUN_DELAY),
        execution_timezone=sessions.timezone,
        description=f"{RUN_DELAY.seconds // 60} minutes after the {sessions.calendar_name} close: "
        "one run over every symbol for the session that just closed, so that its scan signals are "
        f"stored within {SIGNALS_DUE.seconds // 60} minutes of the close (the freshness policy of "
        "scan_signals). Skips days that are not trading sessions (holidays).",
    )
    def daily_after_close(context: dg.ScheduleEvaluationContext, settings: PipelineSettings):
        calendar = settings.sessions()
        day = calendar.session_day_of_close(context.scheduled_execution_time - RUN_DELAY)
        if not calendar.is_session(day):
            return dg.SkipReason(f"{day} is not a trading session")
        symbols = context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME)
        if not symbols:
            return dg.SkipReason("the universe is empty: add symbols with `candleflow universe add`")
        return dg.RunRequest(
            run_key=f"session-{day}",
            run_config={"ops": {plan_shards.name: {"config": {"start": str(day), "end": str(day)}}}},
        )

    return daily_after_close


daily_after_close = after_close_schedule(SESSIONS)
