"""``python -m candleflow.status_api [--host 127.0.0.1] [--port 8080] [--store-url-file PATH]``."""

from __future__ import annotations

import argparse
import logging
import sys

from candleflow.environment import store_url
from candleflow.status_cli import add_store_url_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m candleflow.status_api",
                                     description="Read-only HTTP status API of candleflow task tracking.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    add_store_url_options(parser)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    import uvicorn

    from candleflow.status_api.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(store_url(args.store_url_file))
    except (ValueError, FileNotFoundError) as exc:  # the URL file, the URL, or a missing SQLite file
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
