"""``rpiaas sweep SCENARIO ...``: a grid of runs on a process pool or a Dask cluster, aggregated."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``sweep`` to the ``rpiaas`` subparsers ``sub``."""
    sw = sub.add_parser("sweep", help="run a grid of scenarios x policies x parameter values x seeds "
                        "on a process pool or a Dask cluster and aggregate it (docs/sweep.md)")
    sw.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s)")
    sw.add_argument("--policy", action="append", default=[], metavar="P",
                    help="a policy to run (repeatable; default: each scenario's own)")
    sw.add_argument("--seeds", metavar="SEEDS", help="seeds, e.g. 1-30 or 1,2,5-8 (default: the scenario's)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=V1,V2,...",
                    help="override a scenario key; several comma-separated values make it an axis of the grid")
    sw.add_argument("--out", "-o", help="sweep directory (default: runs/sweep-SCENARIO)")
    sw.add_argument("--scheduler", metavar="tcp://HOST:8786",
                    help="run on this Dask distributed scheduler instead of a local process pool")
    sw.add_argument("--workers", type=int, help="local pool processes (default: every core)")
    sw.add_argument("--connect-timeout", type=float, default=5.0, metavar="S",
                    help="seconds to wait for the Dask scheduler (default 5)")
    sw.add_argument("--skip-bad-lines", action="store_true",
                    help="skip malformed trace lines (counted) instead of stopping at the first")
    sw.add_argument("--no-event-log", action="store_true", help="runs write no events.jsonl")
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no table")
    sw.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Expand the grid, run what is not done yet, aggregate, print the table; 1 if a run failed."""
    from ..inputs.errors import InputError
    from ..rundir.reader import is_complete
    from ..sweep import expand, parse_seeds, sweep

    seeds = parse_seeds(args.seeds) if args.seeds else None
    out = Path(args.out) if args.out else Path("runs") / ("sweep-" + Path(args.scenarios[0]).stem)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"expected a positive number of workers, got {args.workers}", "--workers")
    notes: list[str] = []
    specs = expand(args.scenarios, args.policy, seeds, args.overrides, out,
                   event_log=not args.no_event_log, skip_bad_lines=args.skip_bad_lines, notes=notes)
    for note in notes:
        print(note, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        result = sweep(specs, out, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.quiet, connect_timeout_s=args.connect_timeout)
    except KeyboardInterrupt:
        done = sum(is_complete(s.out) for s in specs)
        print(f"interrupted: {done} of {len(specs)} runs done; the same command continues the sweep",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print((out / "summary.txt").read_text().rstrip())
        print(f"report (the table and every plot): {out / 'report.html'}")
    print(f"{len(specs)} runs ({result.ran} run now, {result.reused} already done, "
          f"{len(result.failed)} failed) in {time.perf_counter() - t0:.1f} s: {out}")
    return 1 if result.failed else 0
