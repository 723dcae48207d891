"""``rpiaas policies [NAME] [--json]``: the built-in and installed policies, as a table or as data."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``policies`` to the ``rpiaas`` subparsers ``sub``."""
    p = sub.add_parser("policies", help="list built-in and installed policies: kind, parameters, source")
    p.add_argument("name", nargs="?", help="show this policy alone, with its parameters' defaults")
    p.add_argument("--json", action="store_true", help="print the policies as JSON (a list, or one object "
                   "with NAME)")
    p.set_defaults(run=run)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v['default']!r}" if "default" in v else f"{k} (required)"
                    for k, v in params.items()) or "-"


def run(args: argparse.Namespace) -> int:
    """One row per policy (or one policy); exit 2 if an installed policy cannot be loaded."""
    from ..inputs.errors import did_you_mean
    from ..policy.plugins import available_policies

    broken: dict[str, str] = {}
    policies = available_policies(broken)
    for message in broken.values():
        print(f"error: {message}", file=sys.stderr)
    if args.name is not None:
        if args.name not in policies:
            print(f"error: unknown policy {args.name!r}{did_you_mean(args.name, policies)} "
                  f"(see rpiaas policies)", file=sys.stderr)
            return EXIT_INPUT
        one = policies[args.name].describe()
        if args.json:
            print(json.dumps(one, indent=2))
        else:
            origin = one["origin"] + (f" {one['version']}" if one["version"] else "")
            print(f"{one['name']}: {one['summary']}\n  kind:   {', '.join(one['kinds']) or '-'}\n"
                  f"  source: {origin}")
            for key, v in one["params"].items():
                print(f"  param:  {key} = {v['default']!r}" if "default" in v else f"  param:  {key} (required)")
        return EXIT_OK
    rows = [info.describe() for info in policies.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_INPUT if broken else EXIT_OK
    table = [(r["name"], ", ".join(r["kinds"]) or "-", r["origin"] + (f" {r['version']}" if r["version"] else ""),
              _params(r["params"]), r["summary"]) for r in rows]
    head = ("name", "kind", "source", "parameters (defaults)", "summary")
    widths = [max(len(row[i]) for row in (head, *table)) for i in range(4)]
    for row in (head, *table):
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths, strict=True)) + f"  {row[4]}")
    return EXIT_INPUT if broken else EXIT_OK
