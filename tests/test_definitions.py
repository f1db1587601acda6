"""The code location loads, holds what the stage registry declares, and passes `dg check defs`."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from candleflow.dagster_steps.step import STORE_POOL
from candleflow.definitions import defs
from candleflow.defs.market_data.schedules import daily_after_close
from candleflow.defs.market_data.sharded import plan_shards, process_shard, scan_universe
from candleflow.defs.tracking.retention import delete_old_completed_tasks
from candleflow.pipeline.registry import PIPELINE, SCAN_SIGNALS
from candleflow.tracking.models import DOMAINS

ROOT = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).with_name("dg")
JOBS = {"market_data", "market_data_sharded", "market_data_universe", "tracking_retention"}
SENSORS = {"landing_folder_sensor", "signals_ready_sensor", "tracking_on_run_canceled",
           "tracking_on_run_failure"}
SCHEDULES = {"daily_after_close", "tracking_reconciler", "tracking_retention_daily"}


def test_the_definitions_validate_and_hold_every_job_sensor_and_schedule():
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} - {"__ASSET_JOB"} == JOBS
    assert {sensor.name for sensor in repository.sensor_defs} == SENSORS
    assert {schedule.name for schedule in repository.schedule_defs} == SCHEDULES
    for name in JOBS:  # each job resolves against the resources
        assert defs.resolve_job_def(name).name == name


def test_the_assets_and_checks_are_the_registry_stages():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {s.asset_key for s in PIPELINE}
    assert graph.asset_check_keys == {dg.AssetCheckKey(dg.AssetKey(stage.asset_key), check.name)
                                      for stage in PIPELINE for check in stage.checks}
    for stage in PIPELINE:
        node = graph.get(dg.AssetKey(stage.asset_key))
        assert {key.to_user_string() for key in node.parent_keys} == set(stage.reads)
        assert (node.group_name, node.description) == (stage.group, stage.description)


def test_each_stage_has_its_own_tracking_domain():
    assert sorted(stage.tracking_domain for stage in PIPELINE) == sorted(DOMAINS)


def test_scan_signals_are_due_30_minutes_after_the_close_and_the_daily_run_starts_before():
    policies = {spec.key.to_user_string(): spec.freshness_policy
                for spec in defs.resolve_assets_def(SCAN_SIGNALS.asset_key).specs}
    policy = policies.pop(SCAN_SIGNALS.asset_key)
    assert set(policies.values()) == {None}
    assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == (
        "30 16 * * 1-5", timedelta(minutes=30), "America/New_York")
    minute, hour, *days = daily_after_close.cron_schedule.split()
    deadline_minute, deadline_hour, *deadline_days = policy.deadline_cron.split()
    starts = datetime(2024, 3, 8, int(hour), int(minute))
    deadline = datetime(2024, 3, 8, int(deadline_hour), int(deadline_minute))
    assert days == deadline_days and daily_after_close.execution_timezone == policy.timezone
    assert deadline - policy.lower_bound_delta <= starts < deadline


def test_the_steps_that_write_to_the_store_share_a_pool():
    writers = [defs.resolve_assets_def(SCAN_SIGNALS.asset_key).op, process_shard, scan_universe,
               delete_old_completed_tasks]
    assert [op.pool for op in writers] == [STORE_POOL] * 4
    assert plan_shards.pool is None  # it only reads the universe


def dg_command(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    return subprocess.run([str(DG), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_dg_checks_and_lists_the_definitions():
    check = dg_command("check", "defs")
    assert check.returncode == 0, check.stderr
    assert "All definitions loaded successfully." in check.stdout + check.stderr
    listed = dg_command("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert {asset["asset_key"] for asset in found["assets"]} == {s.asset_key for s in PIPELINE}
    assert {job["name"] for job in found["jobs"]} == JOBS
    assert {sensor["name"] for sensor in found["sensors"]} == SENSORS
    assert {schedule["name"] for schedule in found["schedules"]} == SCHEDULES
