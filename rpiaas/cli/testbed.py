"""``rpiaas testbed up | status | down``: a master and agents on this machine (needs the live extra).

The subcommands and their work live with the local testbed; without the live
extra the command is still listed, and says what to install when it is used.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import LIVE_EXTRA, live_missing, need_live

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``testbed`` to the ``rpiaas`` subparsers ``sub``."""
    if live_missing() is None:
        from ..live.testbed import add_testbed_parser

        add_testbed_parser(sub)
        tb = sub.choices["testbed"]
    else:  # say what is missing when it is used, not at every start
        tb = sub.add_parser("testbed", help=f"a master and agents on this machine (needs {LIVE_EXTRA})",
                            description=f"Needs the live extra: {LIVE_EXTRA}")
        tb.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    tb.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rpiaas testbed COMMAND``; the exit code."""
    need_live("rpiaas testbed")
    from ..live.testbed import run_testbed

    return run_testbed(args)
