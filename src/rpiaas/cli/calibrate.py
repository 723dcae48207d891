"""``rpiaas calibrate LIVE_RUN [LIVE_RUN ...] -o CALIBRATED.yaml [--check OTHER_RUN ...]``: fit the
simulator's node types to testbed runs, and check the fit on others."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """``rpiaas calibrate LIVE_RUN [LIVE_RUN ...] [--scenario SCENARIO] -o CALIBRATED.yaml
    [--check OTHER_RUN ...]``."""
    p = sub.add_parser("calibrate", help="fit the simulator's node types to a testbed run",
                       description="Fit each node type's speed and start overhead by least squares "
                       "on the run's task runtimes, and its power and boot time where the run measured "
                       "them (never from modelled power); write a scenario that uses them; simulate "
                       "before and after and print the errors against the run (response per task, "
                       "makespan, mean response, energy). A run whose tasks all slept is refused.")
    # dest live_run: ``run`` is the command's function (set_defaults below)
    p.add_argument("live_run", metavar="LIVE_RUN", nargs="+",
                   help="the run directory to fit (usually a live run); several runs of one scenario are "
                   "pooled into one fit, and the errors are against their mean")
    p.add_argument("--scenario", help="scenario to calibrate (default: the one in the run's run.json)")
    p.add_argument("--out", "-o", required=True, metavar="CALIBRATED.yaml",
                   help="the calibrated scenario to write")
    p.add_argument("--keep-runs", metavar="DIR",
                   help="keep the simulated runs before and after (DIR/before, DIR/after)")
    p.add_argument("--no-check", action="store_true",
                   help="do not simulate before and after (no errors printed)")
    p.add_argument("--check", metavar="OTHER_RUN", nargs="+",
                   help="another run on the same nodes (another workload): report the fit's error on it "
                   "beside the error on LIVE_RUN (out of sample against in sample); several runs of "
                   "that workload: the error against their mean")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``calibrate`` command; exit code 2 (and one ``error:`` line) on bad input."""
    from ..analysis.calibrate import CalibrateError, calibrate, format_calibration
    from ..inputs.errors import InputError
    from ..rundir.reader import RunFileError

    if args.check is not None and args.no_check:
        print("error: --check simulates the other run: it cannot go with --no-check", file=sys.stderr)
        return EXIT_INPUT
    try:
        result = calibrate(args.live_run, args.out, scenario=args.scenario,
                           simulate_check=not args.no_check, keep_runs=args.keep_runs, check=args.check)
    except (RunFileError, InputError, CalibrateError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    print(format_calibration(result))
    return EXIT_OK
