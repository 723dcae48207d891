"""``rpiaas policies``: list the built-in and installed policies."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``policies`` to the ``rpiaas`` subparsers ``sub``."""
    sub.add_parser("policies", help="list built-in and installed policies").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """One line per policy (name, origin, summary); exit 2 if an installed policy cannot be loaded."""
    from ..policy.plugins import available_policies

    broken: dict[str, str] = {}
    policies = available_policies(broken)
    for message in broken.values():
        print(f"error: {message}", file=sys.stderr)
    rows = [(info.name, info.origin, info.summary) for info in policies.values()]
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    for name, origin, summary in rows:
        print(f"{name:<{w1}}  {origin:<{w2}}  {summary}")
    return EXIT_INPUT if broken else EXIT_OK
