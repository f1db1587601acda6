"""Sensors and schedules."""

import dagster as dg

from candleflow.sensors.daily_schedule import daily_after_close
from candleflow.sensors.landing import landing_folder_sensor
from candleflow.sensors.readiness import signals_ready_sensor
from candleflow.sensors.tracking import (
    tracking_on_run_canceled,
    tracking_on_run_failure,
    tracking_reconciler,
    tracking_retention,
    tracking_retention_daily,
)

defs = dg.Definitions(
    sensors=[landing_folder_sensor, signals_ready_sensor, tracking_on_run_failure,
             tracking_on_run_canceled],
    schedules=[daily_after_close, tracking_reconciler, tracking_retention_daily],
    jobs=[tracking_retention],
)
