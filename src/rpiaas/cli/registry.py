"""``rpiaas registry serve``: the testbed's image registry on a cluster's master, in the foreground.

A local testbed starts its own (``rpiaas testbed up --local N --registry``);
on a Pi cluster the master runs this beside ``rpiaas master`` (as a service),
and each agent is configured with ``registry = "MASTER:PORT"``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``registry`` to the ``rpiaas`` subparsers ``sub``."""
    from ..testbed.plan import DEFAULT_DIR

    reg = sub.add_parser("registry", help="the testbed's image registry (docker-registry)")
    cmds = reg.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    serve = cmds.add_parser("serve", help="run the registry until Ctrl-C: read-only pulls on --listen, "
                            "authenticated pushes on --push-listen")
    serve.add_argument("--listen", default="0.0.0.0:5000", metavar="HOST:PORT",
                       help="where the nodes pull (read-only, anonymous, plain HTTP; default 0.0.0.0:5000: "
                            "put the cluster network's address of the master here)")
    serve.add_argument("--push-listen", default="127.0.0.1:5001", metavar="HOST:PORT",
                       help="where pushes go, each with the credential (default 127.0.0.1:5001: "
                            "from the master only)")
    serve.add_argument("--dir", default=DEFAULT_DIR,
                       help=f"where its storage, configuration, credential and logs are (default {DEFAULT_DIR})")
    reg.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rpiaas registry serve``; the exit code."""
    from ..testbed.plan import TestbedError
    from ..testbed.procs import tail
    from ..testbed.registry import start_registry

    root = Path(args.dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    try:
        registry = start_registry(root, listen=args.listen, push_listen=args.push_listen)
    except TestbedError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"registry: pulls on {registry.pull_address} (read-only), pushes on {registry.push_address} "
          f"(credential in {registry.auth_file}); storage {registry.storage}; logs in {root / 'logs'}\n"
          f"push an image with: rpiaas image push IMAGE --dir {args.dir}", flush=True)
    try:
        while all(p.alive() for p in registry.processes()):
            time.sleep(0.5)
        dead = next(p for p in registry.processes() if not p.alive())
        print(f"error: {dead.name} exited; the end of {dead.log}:\n{tail(dead.log)}", file=sys.stderr)
        return 1
    finally:  # Ctrl-C and SIGTERM too
        registry.stop(5.0)
