"""``rpiaas new-policy NAME [--dir D]``: a policy package to start from, that installs, lists and runs at once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``new-policy`` to the ``rpiaas`` subparsers ``sub``."""
    p = sub.add_parser("new-policy", help="write a new policy package (pyproject with the entry point, an "
                       "example policy, a scenario, tests, a README) to start from (docs/writing-a-policy.md)")
    p.add_argument("name", metavar="NAME",
                   help="the policy's name, as scenarios will write it: lowercase letters, digits and _")
    p.add_argument("--dir", metavar="D", help="the package's directory (default: ./rpiaas-NAME)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing directory, over the package's files (others are kept)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the package; say what to do next."""
    from ..policy.template import default_directory, write_package

    root = Path(args.dir) if args.dir else default_directory(args.name)
    files = write_package(args.name, root, force=args.force)
    print(f"wrote {len(files)} files in {root}/:")
    for path in files:
        print(f"  {path.relative_to(root)}")
    where = str(root) if root.is_absolute() or str(root).startswith(".") else f"./{root}"
    print(f"next:\n  pip install -e '{where}[test]'\n  rpiaas policies {args.name}\n"
          f"  rpiaas run {root / 'scenarios' / 'example.yaml'} --out runs/{args.name}\n"
          f"  (cd {root} && pytest)")
    return EXIT_OK
