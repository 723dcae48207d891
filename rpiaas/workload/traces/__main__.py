"""``python -m rpiaas.workload.traces FILE``: a trace's header, its jobs and what was skipped."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ...inputs.source import InputError
from .jobs import SkipReport
from .mapping import map_jobs, target_for
from .options import TraceOptions
from .swf import swf_header

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rpiaas.workload.traces FILE.swf [--skip-bad-lines]``: header, jobs and what was skipped."""
    import argparse
    import time

    p = argparse.ArgumentParser(prog="python -m rpiaas.workload.traces", description=main.__doc__)
    p.add_argument("trace")
    p.add_argument("--skip-bad-lines", action="store_true")
    args = p.parse_args(argv)
    opts = TraceOptions(Path(args.trace), "csv" if args.trace.endswith(".csv") else "swf",
                        skip_bad_lines=args.skip_bad_lines)
    try:
        if opts.format == "swf":
            for k, v in swf_header(opts.path).items():
                print(f"{k}: {v}")
        rep = SkipReport()
        t0 = time.perf_counter()
        for _ in map_jobs(opts, target_for(opts, [(10**9, 10**12)], 1), rep):
            pass
        dt = time.perf_counter() - t0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{rep.describe()} in {dt:.2f} s ({rep.read / dt if dt > 0 else 0:,.0f} jobs/s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
