"""``rpiaas compare RUN_A RUN_B [RUN_C ...] [--live-runs L1 L2 ...]``: runs side by side,
compare.json and report.html."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """``rpiaas compare RUN_A RUN_B [RUN_C ...] [--out DIR]``."""
    p = sub.add_parser("compare", help="compare run directories side by side (the first is the reference)",
                       description="Compare runs: summary metrics, task by task, node by node. "
                       "Writes compare.json and a self-contained report.html.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories; the first is the reference")
    p.add_argument("--live-runs", nargs="+", metavar="LIVE_RUN", default=[],
                   help="two or more live runs of one scenario: the other runs are also judged against "
                   "how much these differ from each other (the testbed's own spread)")
    p.add_argument("--out", "-o", help="where compare.json and report.html go "
                   "(default: runs/compare-A-vs-B)")
    p.add_argument("--quiet", "-q", action="store_true", help="no tables, only the paths written")
    p.add_argument("--tolerance-s", type=_non_negative, metavar="S",
                   help="timing differences up to S seconds are agreement (default: the p95 start "
                   "lag a live run measured, its testbed's jitter; else 0)")
    p.set_defaults(run=run)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """The ``compare`` command; exit code 2 (and one ``error:`` line) on bad input."""
    from ..analysis.compare import compare_runs, write_comparison
    from ..analysis.tables import format_comparison
    from ..rundir.reader import RunFileError

    if len(args.live_runs) == 1:
        print("error: --live-runs needs at least two live runs (their spread is what the others are "
              "judged against)", file=sys.stderr)
        return EXIT_INPUT
    if len(args.runs) + len(args.live_runs) < 2:
        print("error: compare needs at least two run directories", file=sys.stderr)
        return EXIT_INPUT
    try:
        result = compare_runs(args.runs, args.tolerance_s, live_runs=args.live_runs)
        out = Path(args.out) if args.out else Path("runs") / (
            "compare-" + "-vs-".join(r["label"].replace(" ", "") for r in result["runs"][:3]))
        if out.exists() and not out.is_dir():
            print(f"error: {out}: exists and is not a directory", file=sys.stderr)
            return EXIT_INPUT
        json_path, html_path = write_comparison(result, out)
    except RunFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if not args.quiet:
        print(format_comparison(result))
        print()
    print(f"wrote {json_path} and {html_path}")
    return EXIT_OK
