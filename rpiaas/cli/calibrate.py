"""``rpiaas calibrate LIVE_RUN -o CALIBRATED.yaml``: fit the simulator's node types to a testbed run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..inputs.source import InputError
from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """``rpiaas calibrate LIVE_RUN [--scenario SCENARIO] -o CALIBRATED.yaml``."""
    p = sub.add_parser("calibrate", help="fit the simulator's node types to a testbed run",
                       description="Fit each node type's speed and start overhead (and power "
                       "where measured) to a run by least squares; write a scenario that uses "
                       "them; simulate before and after and print the per-task response error.")
    # dest live_run: ``run`` is the command's function (set_defaults below)
    p.add_argument("live_run", metavar="LIVE_RUN", help="the run directory to fit (usually a live run)")
    p.add_argument("--scenario", help="scenario to calibrate (default: the one in the run's run.json)")
    p.add_argument("--out", "-o", required=True, metavar="CALIBRATED.yaml",
                   help="the calibrated scenario to write")
    p.add_argument("--keep-runs", metavar="DIR",
                   help="keep the simulated runs before and after (DIR/before, DIR/after)")
    p.add_argument("--no-check", action="store_true",
                   help="do not simulate before and after (no errors printed)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``calibrate`` command; exit code 2 (and one ``error:`` line) on bad input."""
    from ..analysis.calibrate import calibrate, format_calibration
    from ..rundir.reader import RunFileError

    try:
        result = calibrate(args.live_run, args.out, scenario=args.scenario,
                           simulate_check=not args.no_check, keep_runs=args.keep_runs)
    except (RunFileError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    print(format_calibration(result))
    return EXIT_OK
