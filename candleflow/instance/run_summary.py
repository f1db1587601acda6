"""A few lines about a run, for the terminal: ``python -m candleflow.instance.run_summary``.

``make demo`` keeps ``dagster job execute``'s full event log in a file and prints this instead: the
run id and status, then per stage (in the order the stages ran) the symbols it materialized, the
rows it wrote and its seconds, then the asset checks and the reason of each failed step.
Everything comes from the run's events in the Dagster instance (``DAGSTER_HOME``): each
materialization carries its stage's ``run_rows`` and ``stage_seconds``, so one per stage and
step is read for them. A stage in which every symbol failed has no materialization and no line; its check says so. It lives beside the
other readers of the Dagster instance, not in ``reports/``, which is kept free of Dagster.
"""

import argparse
import sys
from dataclasses import dataclass

import dagster as dg

MAIN_JOB = "market_data"
#: A step's failure reason is cut here (every failed symbol's reason is in the event log).
REASON_CHARS = 240


@dataclass(frozen=True)
class StageLine:
    """What one stage (asset) did in a run, summed over the run's steps."""

    asset: str
    symbols: int
    rows: int
    seconds: float


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job: str
    status: str
    seconds: float | None
    stages: list[StageLine]
    checks_passed: int
    checks_failed: list[str]  # ``asset.check`` names
    step_failures: list[str]  # ``step: reason``


def latest_run_id(instance: dg.DagsterInstance, job: str = MAIN_JOB) -> str | None:
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job), limit=1)
    return records[0].dagster_run.run_id if records else None


def summarize_run(instance: dg.DagsterInstance, run_id: str) -> RunSummary:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise LookupError(f"no run {run_id!r} in the Dagster instance")
    symbols: dict[str, int] = {}
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    counted_steps: set[tuple[str | None, str]] = set()
    passed, failed, step_failures = 0, [], []
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION,
                                                    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                    dg.DagsterEventType.STEP_FAILURE}):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            step_failures.append(f"{entry.step_key}: {_failure_reason(event.step_failure_data)}")
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                passed += 1
            else:
                failed.append(f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}")
            continue
        materialization = event.event_specific_data.materialization
        asset = materialization.asset_key.to_user_string()
        symbols[asset] = symbols.get(asset, 0) + 1
        if (entry.step_key, asset) not in counted_steps:  # the stage's figures, once per step
            counted_steps.add((entry.step_key, asset))
            rows[asset] = rows.get(asset, 0) + materialization.metadata["run_rows"].value
            seconds[asset] = seconds.get(asset, 0.0) + materialization.metadata["stage_seconds"].value
    stages = [StageLine(asset, count, rows[asset], seconds[asset]) for asset, count in symbols.items()]
    took = (record.end_time - record.start_time
            if record.start_time is not None and record.end_time is not None else None)
    return RunSummary(run_id, record.dagster_run.job_name, record.dagster_run.status.value, took,
                      stages, passed, failed, step_failures)


def _failure_reason(failure) -> str:
    """The first line of what the step said (``every symbol failed: ...``) or of its error."""
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        text = failure.user_failure_data.description
    else:
        text = failure.error.message if failure.error is not None else "no reason given"
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS] + " ... (see the event log)"


def format_summary(summary: RunSummary) -> list[str]:
    took = f" in {summary.seconds:.1f} s" if summary.seconds is not None else ""
    lines = [f"run {summary.run_id} of {summary.job}: {summary.status}{took}",
             f"  {'stage':<14}{'symbols':>8}{'rows':>12}{'seconds':>9}"]
    lines += [f"  {s.asset:<14}{s.symbols:>8,}{s.rows:>12,}{s.seconds:>9.2f}" for s in summary.stages]
    if not summary.stages:
        lines.append("  (no stage materialized anything)")
    checks = f"checks: {summary.checks_passed} passed, {len(summary.checks_failed)} failed"
    lines.append(checks + (f" ({', '.join(summary.checks_failed)})" if summary.checks_failed else ""))
    lines += [f"failed step {failure}" for failure in summary.step_failures]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Prints the summary of the job's latest run; exit status 0 only if that run succeeded."""
    parser = argparse.ArgumentParser(prog="python -m candleflow.instance.run_summary",
                                     description="Summary of the latest run of a job in the Dagster "
                                                 "instance at DAGSTER_HOME.")
    parser.add_argument("--job", default=MAIN_JOB)
    parser.add_argument("--log", help="file holding the run's full event log (its path is printed)")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        run_id = latest_run_id(instance, args.job)
        if run_id is None:
            print(f"no run of {args.job} in the Dagster instance", file=sys.stderr)
            return 1
        summary = summarize_run(instance, run_id)
    print("\n".join(format_summary(summary)))
    if args.log:
        print(f"full event log: {args.log}")
    return 0 if summary.status == dg.DagsterRunStatus.SUCCESS.value else 1


if __name__ == "__main__":
    sys.exit(main())
