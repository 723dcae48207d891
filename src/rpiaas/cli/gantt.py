"""``rpiaas gantt RUN [RUN_B] -o FILE.svg|png``: the Gantt chart of one run, or two on one time axis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """``rpiaas gantt RUN [RUN_B] -o FILE.svg|png [--lanes N]``."""
    p = sub.add_parser("gantt", help="draw the Gantt chart of a run (or two, one above the other)",
                       description="Per node, a lane of the tasks it ran over time (coloured by task "
                       "kind), the queue length beneath. Past --lanes nodes, nodes are grouped into "
                       "lanes showing their busy cores. SVG needs nothing; PNG needs matplotlib.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="one or two run directories")
    p.add_argument("--out", "-o", required=True, help="the picture: FILE.svg or FILE.png")
    p.add_argument("--lanes", type=int, default=60, metavar="N",
                   help="at most N lanes: more nodes are grouped (default: 60)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``gantt`` command; exit code 2 (and one ``error:`` line) on bad input."""
    from ..analysis.gantt import gantt_model, gantt_png, gantt_svg
    from ..rundir.reader import RunFileError, load_run

    out = Path(args.out)
    if len(args.runs) > 2:
        print("error: gantt draws one or two runs", file=sys.stderr)
        return EXIT_INPUT
    if out.suffix.lower() not in (".svg", ".png"):
        print(f"error: --out: expected a .svg or .png file name, got {args.out!r}", file=sys.stderr)
        return EXIT_INPUT
    if args.lanes < 1:
        print(f"error: --lanes: expected a positive number, got {args.lanes}", file=sys.stderr)
        return EXIT_INPUT
    try:
        runs = [load_run(p, series=False) for p in args.runs]
    except RunFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    for r in runs:
        r.label = r.path.name
    models = [gantt_model(r, max_lanes=args.lanes) for r in runs]
    try:
        if out.suffix.lower() == ".svg":
            out.write_text(gantt_svg(models, standalone=True) + "\n", encoding="utf-8")
        else:
            try:
                import matplotlib  # noqa: F401
            except ModuleNotFoundError:
                print("error: a PNG needs matplotlib (pip install 'rpiaas[sweep]'); "
                      "an .svg needs nothing", file=sys.stderr)
                return EXIT_INPUT
            gantt_png(models, out)
    except OSError as e:
        print(f"error: {out}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    print(f"wrote {out}")
    return EXIT_OK
