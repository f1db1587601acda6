"""The ``candleflow`` command: manage the universe, preload history, show signals.

Runs themselves go through Dagster (``dagster job execute``, the UI, schedules and sensors).
Every command but ``status`` gets its parsed arguments and the settings (``candleflow/settings.py``),
read once.
"""

import argparse
import json
import sys
from datetime import UTC, date, datetime, time

import pandas as pd

from candleflow.environment import console_script
from candleflow.market.symbols import SymbolError, read_universe_file, require_known, validate_symbols
from candleflow.settings import Settings, read_settings


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get()


def _universe(instance) -> list[str]:
    from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME

    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))


def cmd_universe(args, settings: Settings) -> int:
    from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME

    instance = _instance()
    current = _universe(instance)
    if args.action == "list":
        print("\n".join(current))
    elif args.action == "range-tags":
        if not current:
            raise SymbolError("the universe is empty: add symbols with `candleflow universe add`")
        from candleflow.dagster_steps.partitions import partition_range_tags

        print(json.dumps(partition_range_tags(current)))
    elif args.action == "add":
        wanted = validate_symbols(args.symbols)
        new = [s for s in wanted if s not in set(current)]
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, new)
        print(f"added {len(new)} symbol(s); universe has {len(current) + len(new)}")
    elif args.action == "remove":
        for symbol in require_known(args.symbols, current):
            instance.delete_dynamic_partition(SYMBOLS_PARTITIONS_NAME, symbol)
        print(f"removed {len(args.symbols)} symbol(s)")
    elif args.action == "sync":
        wanted = read_universe_file(args.file)
        new = [s for s in wanted if s not in set(current)]
        gone = [s for s in current if s not in set(wanted)]
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, new)
        for symbol in gone:
            instance.delete_dynamic_partition(SYMBOLS_PARTITIONS_NAME, symbol)
        print(f"universe synced to {args.file}: {len(new)} added, {len(gone)} removed, "
              f"{len(wanted)} symbols")
    return 0


def cmd_preload(args, settings: Settings) -> int:
    """Daily history from the synthetic source, ending the session before the last closed one."""
    from candleflow.pipeline.history import preload_daily_history
    from candleflow.store import CandleStore

    symbols = validate_symbols(args.symbols) if args.symbols else _universe(_instance())
    through = date.fromisoformat(args.through) if args.through else None
    store = CandleStore(settings.domain_store_url)
    store.create_schema()
    seed = settings.seed if args.seed is None else args.seed
    rows, first, last = preload_daily_history(store, settings.sessions(), symbols, args.sessions, seed, through)
    print(f"preloaded {rows} daily bars for {len(symbols)} symbols, sessions {first}..{last}")
    return 0


def cmd_signals(args, settings: Settings) -> int:
    from candleflow.store import CandleStore

    store = CandleStore(settings.domain_store_url)
    store.create_schema()
    since = None
    if args.since:
        since = int(datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp())
    signals = store.read_signals(since)
    if signals.empty:
        print("no signals stored")
        return 0
    latest = signals.groupby("scan", sort=False).head(args.limit)
    latest = latest.assign(bar_start=pd.to_datetime(latest["bar_start"], unit="s", utc=True),
                           term_values=latest["term_values"].map(_short_terms))
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(latest[["scan", "symbol", "interval", "bar_start", "term_values"]].to_string(index=False))
    print(f"\n{len(signals)} signal(s) stored across {signals['scan'].nunique()} scan(s)")
    return 0


def _short_terms(values: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())


def cmd_retry_failed(args, settings: Settings) -> int:
    """Re-run, in the same run chain, every symbol that has a FAILED tracking row in a run."""
    import subprocess
    import tempfile
    from pathlib import Path

    import yaml

    from candleflow.defs.tracking.reconciler import continuation_request
    from candleflow.store import CandleStore
    from candleflow.tracking.queries import failed_partitions, parse_run_id

    run_id = parse_run_id(args.run_id)
    store = CandleStore(settings.domain_store_url)
    chains = failed_partitions(store.engine, run_id)
    if not chains:
        print(f"run {run_id}: no failed symbols")
        return 0
    instance = _instance()
    dagster = console_script("dagster")
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "run.yaml"
        for root, symbols in chains.items():
            for symbol in symbols:
                request = continuation_request(instance, root, symbol)
                config.write_text(yaml.safe_dump(request.run_config))  # the root run's window
                tags = json.dumps({"dagster/partition": request.partition_key, **request.tags})
                print(f"retrying {symbol} (run chain {root})", flush=True)
                command = [dagster, "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
                           "-c", str(config), "--tags", tags]
                failures += subprocess.run(command, capture_output=True).returncode != 0
    print(f"retried {sum(len(s) for s in chains.values())} symbol(s); {failures} run(s) failed")
    return 1 if failures else 0


def cmd_backfill(args, settings: Settings) -> int:
    """A window of history for the universe (or some of it) in one watched, resumable run."""
    from candleflow.backfill import Backfill, backfill_symbols, run_backfill
    from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME

    if args.end < args.start:
        raise ValueError(f"--to {args.end} is before --from {args.start}")
    instance = _instance()
    if args.universe:
        wanted = read_universe_file(args.universe)
        current = set(_universe(instance))
        new = [s for s in wanted if s not in current]
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, new)
        if new:
            print(f"added {len(new)} symbol(s) of {args.universe} to the universe")
        symbols = tuple(wanted)
    else:
        symbols = backfill_symbols(_universe(instance), args.symbols or [])
    backfill = Backfill(args.start, args.end, symbols)
    settings.home.mkdir(parents=True, exist_ok=True)
    return run_backfill(instance, settings, backfill, settings.home / f"backfill-{backfill.key}.log")


def cmd_prune_runs(args, settings: Settings) -> int:
    from candleflow.instance.pruning import prune_runs

    run_ids = prune_runs(_instance(), args.older_than_days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(run_ids)} finished run(s) older than {args.older_than_days:g} days, with their events")
    return 0


def cmd_bars_delete(args, settings: Settings) -> int:
    """Delete a symbol's stored bars of an interval over whole exchange days, and every row built
    from them (coarser bars, indicator values, signals), so that a later run derives them again."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from candleflow.market.affected import built_on
    from candleflow.store import CandleStore

    (symbol,) = validate_symbols([args.symbol])
    if args.start > args.end:
        raise ValueError(f"--from {args.start} is after --to {args.end}")
    timezone = ZoneInfo(settings.sessions().timezone)
    start, end = (int(datetime.combine(day, time(), timezone).timestamp())
                  for day in (args.start, args.end + timedelta(days=1)))
    intervals = [args.interval, *built_on(args.interval)]
    store = CandleStore(settings.domain_store_url)
    store.create_schema()
    deleted = store.delete_bars(symbol, intervals, start, end)
    counts = ", ".join(f"{table} {rows}" for table, rows in deleted.items())
    print(f"deleted {symbol} {args.start}..{args.end} at {', '.join(intervals)}: {counts} rows")
    return 0


def _positive_days(value: str) -> float:
    days = float(value)
    if days <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {value!r}")
    return days


def cmd_replay(args, settings: Settings) -> int:
    """Land a session's minutes as files, one minute at a time; with --execute, run each minute."""
    from pathlib import Path

    from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME
    from candleflow.sources.replay import replay, session_minutes

    instance = _instance()
    symbols = validate_symbols(args.symbols) if args.symbols else _universe(instance)
    if not symbols:
        raise SymbolError("the universe is empty: add symbols with `candleflow universe add` "
                          "or give --symbols")
    calendar = settings.sessions()
    minutes = session_minutes(symbols, date.fromisoformat(args.session), calendar, seed=settings.seed,
                              start=args.start, end=args.end)
    if args.execute:
        known = set(_universe(instance))
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, [s for s in symbols if s not in known])
    failed = 0
    for landed in replay(minutes, Path(args.landing), args.speed):
        clock = pd.Timestamp(landed.bar_start, unit="s", tz=calendar.timezone).strftime("%H:%M")
        line = f"{clock} landed {len(landed.symbols)} file(s) in {args.landing}"
        if args.execute:
            run = _run_landed_minute(instance, Path(args.landing), landed)
            failed += not run.success
            line += f"; run {run.run_id} {'succeeded' if run.success else 'FAILED'}"
        print(line, flush=True)
    return 1 if failed else 0


def _run_landed_minute(instance, landing, landed):
    """The ``market_data`` job in this process over the range of the minute's symbols, reading
    only that minute's files: the run the landing sensor would launch."""
    from candleflow.dagster_steps.partitions import partition_range_tags
    from candleflow.definitions import defs
    from candleflow.resources import LandingFolderCandles
    from candleflow.defs.market_data.landing import covering_range

    symbols = covering_range(_universe(instance), set(landed.symbols))
    source = LandingFolderCandles(landing_dir=str(landing.resolve()), landed_since_ns=landed.landed_since_ns)
    return defs.resolve_job_def("market_data").execute_in_process(
        instance=instance, tags=partition_range_tags(symbols), resources={"candle_source": source},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}, raise_on_error=False)


def _session_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM (exchange time), got {value!r}") from None


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    speed = float(value)
    if speed <= 0:
        raise argparse.ArgumentTypeError(f"must be positive minutes per second, or max; got {value!r}")
    return speed


def cmd_status(args) -> int:
    """A program of its own (``candleflow/status_cli.py``): it reads its store URL (from
    ``--store-url-file`` or the settings) and reports its errors with its own exit codes."""
    from candleflow.status_cli import main as status_main

    return status_main(args.rest)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="candleflow", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    universe = sub.add_parser("universe", help="symbols = the 'symbols' dynamic partitions")
    actions = universe.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="print the universe")
    actions.add_parser("range-tags", help="print run tags covering the whole universe as one range")
    actions.add_parser("add", help="add symbols").add_argument("symbols", nargs="+")
    actions.add_parser("remove", help="remove symbols").add_argument("symbols", nargs="+")
    actions.add_parser("sync", help="make the universe equal a universe file").add_argument("file")
    universe.set_defaults(func=cmd_universe)

    preload = sub.add_parser("preload", help="store synthetic daily history before a run")
    preload.add_argument("--sessions", type=int, default=260)
    preload.add_argument("--through", help="last session to preload (default: the session before "
                         "the latest closed one)")
    preload.add_argument("--seed", type=int, help="seed of the synthetic source (default: CANDLEFLOW_SEED, 7)")
    preload.add_argument("--symbols", nargs="*", help="default: the universe")
    preload.set_defaults(func=cmd_preload)

    signals = sub.add_parser("signals", help="print stored scan signals, newest first")
    signals.add_argument("--since", help="only bars from this date (YYYY-MM-DD)")
    signals.add_argument("--limit", type=int, default=10, help="rows per scan")
    signals.set_defaults(func=cmd_signals)

    retry = sub.add_parser("retry-failed", help="re-run the symbols with FAILED tracking rows in a "
                           "run, continuing its run chain (attempts count on)")
    retry.add_argument("run_id")
    retry.set_defaults(func=cmd_retry_failed)

    backfill = sub.add_parser("backfill", help="a window of history in one market_data_universe run, "
                              "with its progress; run it again to continue a killed one")
    backfill.add_argument("--from", dest="start", type=date.fromisoformat, required=True,
                          help="first session (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", type=date.fromisoformat, required=True,
                          help="last session (YYYY-MM-DD)")
    chosen = backfill.add_mutually_exclusive_group()
    chosen.add_argument("--symbols", nargs="+", help="symbols of the universe (default: all of it)")
    chosen.add_argument("--universe", help="a universe file; its symbols not yet in the universe are added")
    backfill.set_defaults(func=cmd_backfill)

    prune = sub.add_parser("prune-runs", help="delete finished Dagster runs older than N days with "
                           "their event rows (docs/deployment.md, \"Clean-up\")")
    prune.add_argument("--older-than-days", type=_positive_days, required=True)
    prune.add_argument("--dry-run", action="store_true", help="only count them")
    prune.set_defaults(func=cmd_prune_runs)

    bars = sub.add_parser("bars", help="stored bars")
    bar_actions = bars.add_subparsers(dest="action", required=True)
    delete = bar_actions.add_parser("delete", help="delete a symbol's bars of whole exchange days and "
                                    "what was built from them (coarser bars, indicator values, "
                                    "signals); a later run derives them again")
    delete.add_argument("symbol", metavar="SYMBOL")
    delete.add_argument("--from", dest="start", type=date.fromisoformat, required=True,
                        metavar="YYYY-MM-DD", help="first exchange day")
    delete.add_argument("--to", dest="end", type=date.fromisoformat, required=True,
                        metavar="YYYY-MM-DD", help="last exchange day, included")
    delete.add_argument("--interval", choices=("1m", "1d"), default="1m",
                        help="the base interval the bars were stored at (default 1m)")
    delete.set_defaults(func=cmd_bars_delete)

    replay = sub.add_parser("replay", help="land a session minute by minute as files "
                            "(SYMBOL_YYYYMMDDTHHMM.csv) for the landing sensor, or run each minute")
    replay.add_argument("--session", required=True, help="the session to replay (YYYY-MM-DD)")
    replay.add_argument("--landing", required=True, help="landing folder to write into")
    replay.add_argument("--symbols", nargs="*", help="default: the universe")
    replay.add_argument("--speed", type=_speed, default=1.0,
                        help="session minutes per wall-clock second (default 1), or max")
    replay.add_argument("--from", dest="start", type=_session_time,
                        help="first minute, exchange time (default: the open)")
    replay.add_argument("--to", dest="end", type=_session_time,
                        help="replay minutes before this exchange time (default: the close)")
    replay.add_argument("--execute", action="store_true", help="run market_data in this process "
                        "after each landed minute, over its symbols (without: the landing sensor "
                        "picks the files up)")
    replay.set_defaults(func=cmd_replay)

    status = sub.add_parser("status", help="task tracking: job RUN_ID | task DOMAIN ID | tasks "
                            "DOMAIN [--status S] | stats DOMAIN (JSON, same as the status API)")
    status.add_argument("rest", nargs=argparse.REMAINDER)
    status.set_defaults(func=cmd_status)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.func is cmd_status:
        return cmd_status(args)
    try:
        return args.func(args, read_settings())
    except (SymbolError, ValueError, FileNotFoundError) as exc:
        print(f"candleflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
