"""``rpiaas validate SCENARIO``: check a scenario without running it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, load, trace_report

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``validate`` to the ``rpiaas`` subparsers ``sub``."""
    val = sub.add_parser("validate", help="check a scenario without running it")
    val.add_argument("scenario", help="scenario YAML file")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                     help="override a scenario key (repeatable), as rpiaas run --set does")
    val.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show the full traceback of a policy that raises")
    val.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the scenario (with its overrides) and say what it holds."""
    sc = load(args)
    n = len(sc.cluster.nodes)
    count = sc.workload.count
    print(f"{args.scenario}: ok — {n} nodes, {count if count is not None else 'endless'} tasks, "
          f"policy {sc.policy.name}, seed {sc.seed}")
    trace_report(sc)
    return EXIT_OK
