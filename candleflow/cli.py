"""The ``candleflow`` command: manage the universe, preload history, show signals.

Runs themselves go through Dagster (``dagster job execute``, the UI, schedules and sensors).
"""

import argparse
import json
import sys
from datetime import UTC, date, datetime

import pandas as pd

from candleflow.environment import store_url
from candleflow.market.symbols import SymbolError, read_universe_file, require_known, validate_symbols


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get()


def _universe(instance) -> list[str]:
    from candleflow.assets.partitions import SYMBOLS_PARTITIONS_NAME

    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))


def cmd_universe(args) -> int:
    from candleflow.assets.partitions import SYMBOLS_PARTITIONS_NAME

    instance = _instance()
    current = _universe(instance)
    if args.action == "list":
        print("\n".join(current))
    elif args.action == "range-tags":
        if not current:
            raise SymbolError("the universe is empty: add symbols with `candleflow universe add`")
        from candleflow.assets.partitions import partition_range_tags

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


def cmd_preload(args) -> int:
    """Daily history from the synthetic source, ending the session before the last closed one."""
    from candleflow.market.calendar import ExchangeSessions
    from candleflow.pipeline.history import preload_daily_history
    from candleflow.store import CandleStore

    symbols = validate_symbols(args.symbols) if args.symbols else _universe(_instance())
    calendar = ExchangeSessions()
    through = date.fromisoformat(args.through) if args.through else None
    store = CandleStore(store_url())
    store.create_schema()
    rows, first, last = preload_daily_history(store, calendar, symbols, args.sessions, args.seed, through)
    print(f"preloaded {rows} daily bars for {len(symbols)} symbols, sessions {first}..{last}")
    return 0


def cmd_signals(args) -> int:
    from candleflow.store import CandleStore

    store = CandleStore(store_url())
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


def cmd_retry_failed(args) -> int:
    """Re-run, in the same run chain, every symbol that has a FAILED tracking row in a run."""
    import subprocess
    import tempfile
    from pathlib import Path

    import yaml

    from candleflow.assets.partitions import ROOT_RUN_TAG
    from candleflow.jobs.sharded import market_data_retry_config
    from candleflow.store import CandleStore
    from candleflow.tracking.queries import failed_partitions, parse_run_id

    run_id = parse_run_id(args.run_id)
    store = CandleStore(store_url())
    chains = failed_partitions(store.engine, run_id)
    if not chains:
        print(f"run {run_id}: no failed symbols")
        return 0
    run = _instance().get_run_by_id(run_id)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(market_data_retry_config(run) if run else {}, handle)  # the run's window
    config = Path(handle.name)
    dagster = str(Path(sys.executable).with_name("dagster"))
    failures = 0
    try:
        for root, symbols in chains.items():
            for symbol in symbols:
                tags = json.dumps({"dagster/partition": symbol, ROOT_RUN_TAG: root})
                print(f"retrying {symbol} (run chain {root})", flush=True)
                command = [dagster, "job", "execute", "-m", "candleflow.definitions", "-j", "market_data",
                           "-c", str(config), "--tags", tags]
                failures += subprocess.run(command, capture_output=True).returncode != 0
    finally:
        config.unlink()
    print(f"retried {sum(len(s) for s in chains.values())} symbol(s); {failures} run(s) failed")
    return 1 if failures else 0


def cmd_prune_runs(args) -> int:
    from candleflow.instance.pruning import prune_runs

    run_ids = prune_runs(_instance(), args.older_than_days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(run_ids)} finished run(s) older than {args.older_than_days:g} days, with their events")
    return 0


def _positive_days(value: str) -> float:
    days = float(value)
    if days <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {value!r}")
    return days


def cmd_status(args) -> int:
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
    preload.add_argument("--seed", type=int, default=7)
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

    prune = sub.add_parser("prune-runs", help="delete finished Dagster runs older than N days with "
                           "their event rows (docs/deployment.md, \"Clean-up\")")
    prune.add_argument("--older-than-days", type=_positive_days, required=True)
    prune.add_argument("--dry-run", action="store_true", help="only count them")
    prune.set_defaults(func=cmd_prune_runs)

    status = sub.add_parser("status", help="task tracking: job RUN_ID | task DOMAIN ID | tasks "
                            "DOMAIN [--status S] | stats DOMAIN (JSON, same as the status API)")
    status.add_argument("rest", nargs=argparse.REMAINDER)
    status.set_defaults(func=cmd_status)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (SymbolError, ValueError, FileNotFoundError) as exc:
        print(f"candleflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
