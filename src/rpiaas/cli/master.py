"""``rpiaas master CONFIG``: run the testbed master (needs the live extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_FAILED, EXIT_INPUT, EXIT_OK, need_live

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``master`` to the ``rpiaas`` subparsers ``sub``."""
    master = sub.add_parser("master", help="run the testbed master: poll agents, keep history, serve the API")
    master.add_argument("config", help="master config YAML file (cluster, store, poll_interval_s, ...)")
    master.add_argument("--host", help="address to listen on instead of the config's listen")
    master.add_argument("--port", type=int, help="port to listen on instead of the config's listen")
    master.add_argument("--store", help="history store instead of the config's: a path or mongodb:// URI")
    master.add_argument("--resume", action="store_true",
                        help="take up the live runs a previous master left unfinished")
    master.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read the config, apply the command-line changes, serve until stopped."""
    import dataclasses
    import logging

    need_live("rpiaas master")
    from ..master.config import check_store, load_master_config

    config = load_master_config(args.config)
    host, port = config.listen
    if args.port is not None:
        if not 0 <= args.port < 65536:
            print(f"error: --port: expected a port 0-65535, got {args.port}", file=sys.stderr)
            return EXIT_INPUT
        port = args.port
    changes: dict[str, Any] = {"listen": (args.host or host, port), "resume": args.resume}
    if args.store is not None:
        try:
            changes["store"] = check_store(args.store)
        except ValueError as e:
            print(f"error: --store: {e}", file=sys.stderr)
            return EXIT_INPUT
    config = dataclasses.replace(config, **changes)
    try:
        from aiohttp import web

        from ..master import create_app
    except ImportError as e:  # aiohttp comes with the agent, not with the simulator
        print(f"error: the master needs aiohttp ({e})", file=sys.stderr)
        return EXIT_INPUT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        web.run_app(create_app(config), host=config.listen[0], port=config.listen[1],
                    print=lambda msg: print(msg, flush=True))
    except OSError as e:  # the port is taken, the store's directory is missing, ...
        print(f"error: master: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
