"""Sensors and schedules."""

import dagster as dg

from candleflow.sensors.daily_schedule import daily_after_close
from candleflow.sensors.landing import landing_folder_sensor

defs = dg.Definitions(sensors=[landing_folder_sensor], schedules=[daily_after_close])
