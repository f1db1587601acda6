"""``candleflow status ...``: the status API's answers on the command line, as JSON.

    status job RUN_ID
    status task DOMAIN ID
    status tasks DOMAIN [--status FAILED] [--limit N] [--offset N]
    status stats DOMAIN

The store URL comes from CANDLEFLOW_STORE_URL (else the embedded SQLite store) or from the file
given with ``--store-url-file PATH``, never from the command line, where every local user can read
it. Prints the same payloads as the HTTP API. Exit codes: 0 ok; 2 unknown or malformed run id /
task id / domain / status (one line on stderr); 1 the store URL or the database could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


class _RemovedStoreUrl(argparse.Action):
    """``--store-url URL`` is refused without printing the URL, which argparse would do for an
    unknown option."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("--store-url was removed (a URL in the process arguments is visible to every local "
                     "user): use CANDLEFLOW_STORE_URL or --store-url-file PATH")


def add_store_url_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    """``--store-url-file PATH`` and the refusal of the removed ``--store-url``."""
    parser.add_argument("--store-url-file", metavar="PATH", default=default,
                        help="file holding the domain store URL (default: CANDLEFLOW_STORE_URL, "
                             "else the embedded SQLite store)")
    parser.add_argument("--store-url", action=_RemovedStoreUrl, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="candleflow status", description=__doc__.split("\n\n")[0])
    add_store_url_options(parser)
    common = argparse.ArgumentParser(add_help=False)  # --store-url-file also after the subcommand
    add_store_url_options(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="what", required=True)
    job = sub.add_parser("job", help="status of a run (and its retries)", parents=[common])
    job.add_argument("run_id")
    task = sub.add_parser("task", parents=[common], help="one task")
    task.add_argument("domain")
    task.add_argument("id")
    tasks = sub.add_parser("tasks", parents=[common], help="tasks of a domain, newest first")
    tasks.add_argument("domain")
    tasks.add_argument("--status", default=None)
    tasks.add_argument("--limit", default=None)
    tasks.add_argument("--offset", default=None)
    stats = sub.add_parser("stats", parents=[common], help="counts and durations of a domain")
    stats.add_argument("domain")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        argv = argv[1:]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return 0 if exc.code == 0 else 2

    from candleflow.tracking import queries
    from candleflow.tracking.models import UnknownDomain

    try:  # validate everything before touching the database
        if args.what == "job":
            run_id = queries.parse_run_id(args.run_id)
            query = lambda engine: queries.job_status(engine, run_id)  # noqa: E731
        elif args.what == "task":
            domain, task_id = queries.parse_domain(args.domain), queries.parse_task_id(args.id)
            query = lambda engine: queries.get_task(engine, domain, task_id)  # noqa: E731
        elif args.what == "tasks":
            domain = queries.parse_domain(args.domain)
            status = queries.parse_status(args.status)
            limit, offset = queries.parse_limit(args.limit), queries.parse_offset(args.offset)
            query = lambda engine: queries.list_tasks(engine, domain, status, limit, offset)  # noqa: E731
        else:
            domain = queries.parse_domain(args.domain)
            query = lambda engine: queries.domain_stats(engine, domain)  # noqa: E731
    except (queries.InvalidArgument, UnknownDomain) as exc:
        print(f"candleflow status: {exc}", file=sys.stderr)
        return 2

    try:
        engine = _store_engine(args.store_url_file)
    except ValueError as exc:  # the URL file, the URL, or a SQLite file that does not exist
        print(f"candleflow status: {exc}", file=sys.stderr)
        return 1
    try:
        payload = query(engine)
    except (queries.TaskNotFound, queries.RunNotFound) as exc:
        print(f"candleflow status: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"candleflow status: cannot read the store: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(payload, indent=2, sort_keys=True))
    return 0


def _store_engine(url_file: str | None):
    from candleflow.environment import store_url
    from candleflow.store.store import make_engine
    from candleflow.tracking import queries

    url = store_url(url_file)
    missing = queries.missing_sqlite_store(url)
    if missing:
        raise ValueError(f"store database not found: {missing}")
    return make_engine(url)


if __name__ == "__main__":
    sys.exit(main())
