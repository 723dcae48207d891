"""``rpiaas traces FILE``: a workload trace's header, its jobs, what would be skipped, how fast it reads."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """``rpiaas traces FILE [--skip-bad-lines]``."""
    p = sub.add_parser("traces", help="read a workload trace (SWF or CSV) and say what it holds",
                       description="Read a trace through: its SWF header, how many jobs it has, "
                       "what would be skipped (by reason, with the first line of each) and how "
                       "fast it reads. A file ending in .csv is read as CSV, any other as SWF. A "
                       "bad line is one error naming the file and line.")
    p.add_argument("trace", metavar="FILE", help="the trace: FILE.swf or FILE.csv")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="count malformed lines and go on, instead of stopping at the first")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``traces`` command; a bad trace is an InputError (one ``error:`` line, exit 2)."""
    from ..workload.traces import scan_trace, swf_header, trace_format

    if trace_format(args.trace) == "swf":
        for key, value in swf_header(args.trace).items():
            print(f"{key}: {value}")
    scan = scan_trace(args.trace, skip_bad_lines=args.skip_bad_lines)
    print(f"{scan.report.describe()} in {scan.read_s:.2f} s ({scan.jobs_per_s:,.0f} jobs/s)")
    return EXIT_OK
