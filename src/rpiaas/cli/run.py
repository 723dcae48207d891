"""``rpiaas run SCENARIO``: a run in simulation, or with ``--live`` on the testbed of a master."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_FAILED, EXIT_INPUT, EXIT_OK, Exit, load, need_live, trace_report

__all__ = ["add_parser", "format_summary", "run", "run_name"]


def add_parser(sub: Any) -> None:
    """Add ``run`` (and its live-mode options) to the ``rpiaas`` subparsers ``sub``."""
    run_p = sub.add_parser("run", help="run a scenario in simulation (or on a testbed with --live) "
                           "and write a run directory")
    run_p.add_argument("scenario", help="scenario YAML file")
    run_p.add_argument("--out", "-o", help="run directory (default: runs/NAME-POLICY-sSEED, "
                       "then what --set changed)")
    run_p.add_argument("--force", action="store_true",
                       help="replace the run already in --out (without it, an --out that holds a run "
                       "is refused)")
    run_p.add_argument("--policy", help="placement policy to use instead of the scenario's")
    run_p.add_argument("--seed", type=int, help="seed to use instead of the scenario's")
    run_p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override a scenario key (repeatable), e.g. workload.generator.count=500")
    run_p.add_argument("--no-event-log", action="store_true",
                       help="do not write events.jsonl (same as --set event_log=false)")
    run_p.add_argument("--format", choices=("csv", "parquet"), default="csv",
                       help="how to write the task and node tables (parquet needs the analysis "
                       "extra: pip install 'rpiaas[analysis]')")
    run_p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (shown on a terminal) and no table")
    live = run_p.add_argument_group("live mode: replay the scenario on a testbed")
    live.add_argument("--live", action="store_true",
                      help="replay on the testbed of --master instead of simulating")
    live.add_argument("--master", metavar="URL", help="the master, e.g. http://127.0.0.1:8080 "
                      "(default: $RPIAAS_MASTER_URL)")
    live.add_argument("--token-file", help="the master's token (default: $RPIAAS_MASTER_TOKEN)")
    live.add_argument("--timescale", type=float, default=1.0,
                      help="wall seconds per scenario second (0.01 replays 100 times faster)")
    live.add_argument("--task-kind", choices=("sleep", "cpu", "scenario"), default="sleep",
                      help="run tasks as sleeps of their modelled runtime (exact), as real work "
                           "(cpu), or each as its own kind says: sleep tasks sleep, the others "
                           "work (scenario)")
    run_p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of a policy that raises")
    run_p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Simulate (or replay live), print the summary table and the run directory."""
    from ..inputs.errors import InputError
    from ..sim import simulate

    if args.format == "parquet":
        if args.live:
            raise InputError("--format parquet is for simulated runs (a live run writes CSV)",
                             "--format")
        from ..rundir.parquet import need_pyarrow

        try:
            need_pyarrow("--format parquet")
        except ModuleNotFoundError as e:
            raise InputError(str(e), "--format") from None
    sc = load(args)
    if not args.quiet:
        trace_report(sc)
    mode = "live" if args.live else "sim"
    out = Path(args.out) if args.out else Path("runs") / run_name(sc, args.overrides, args.live)
    _check_out(out, explicit=bool(args.out), force=args.force)
    path: Path | None
    if args.live:
        summary, path = _run_live(args, sc, out)
    else:
        summary, path = simulate(sc, out, progress=not args.quiet and sys.stderr.isatty(), tables=args.format)
    if not args.quiet:
        queue = sc.queue.name if sc.queue else "fcfs"
        print(format_summary(summary, title=f"{sc.name} · {sc.policy.name} · queue {queue} · "
                                            f"seed {sc.seed} · {mode}"))
    print(f"run directory: {path}")
    return EXIT_OK


def _check_out(out: Path, explicit: bool, force: bool) -> None:
    """Refuse an ``--out`` that holds a run unless ``force``; say when a run is replaced.

    The default directory's name is the scenario's, the policy's, the seed's and the
    ``--set`` values': a run there is the same run again, replaced with a note.
    """
    from ..inputs.errors import InputError
    from ..rundir import is_complete

    if not is_complete(out):
        return
    if explicit and not force:
        raise InputError(f"{out} holds a run already; give --force to replace it (or another --out)",
                         "--out")
    print(f"replacing the run in {out}", file=sys.stderr)


def _run_live(args: argparse.Namespace, sc: Any, out: Path) -> tuple[dict[str, Any], Path]:
    import os

    need_live("rpiaas run --live")
    from ..client.client import MasterError, run_live
    from ..inputs.errors import InputError
    from ..master.config import check_token, read_token

    url = args.master or os.environ.get("RPIAAS_MASTER_URL")
    if not url:
        raise InputError("--live needs --master URL (or $RPIAAS_MASTER_URL)", "--master")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL, got {url!r}", "--master")
    if not (args.timescale > 0 and args.timescale < float("inf")):
        raise InputError(f"expected a positive number, got {args.timescale!r}", "--timescale")
    token = None
    try:
        if args.token_file:
            token = read_token(args.token_file)
        elif os.environ.get("RPIAAS_MASTER_TOKEN"):
            token = check_token(os.environ["RPIAAS_MASTER_TOKEN"])
    except ValueError as e:
        raise InputError(str(e), "--token-file" if args.token_file else "RPIAAS_MASTER_TOKEN") from None
    try:
        return run_live(sc, url, token, out, timescale=args.timescale, task_kind=args.task_kind,
                        quiet=args.quiet)
    except MasterError as e:
        print(f"error: {e}", file=sys.stderr)
        # the master refused the scenario or the token: bad input; else the run failed
        raise Exit(EXIT_INPUT if e.status is not None and 400 <= e.status < 500
                   else EXIT_FAILED) from None


def run_name(sc: Any, overrides: list[str], live: bool = False) -> str:
    """The default run directory's name: the scenario, its policy and seed (after
    ``--policy``/``--seed``), and what ``--set`` changed, so that runs of different settings
    never share a directory.  A changed key is named in the name (shortened when long)
    and the whole ``--set`` list is hashed, so two lists that read alike still differ."""
    import hashlib
    import re

    parts = [sc.name, sc.policy.name, f"s{sc.seed}"]
    if overrides:
        readable = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(overrides)).strip("-")[:48]
        digest = hashlib.sha256("\0".join(overrides).encode()).hexdigest()[:6]
        parts.append(f"{readable}-{digest}")
    return "-".join(parts) + ("-live" if live else "")


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, str):  # a label: where a figure comes from
        return value
    return f"{value:,}"


# the per-type columns the table after the summary shows (run.json has them all)
_TYPE_COLUMNS = (("nodes", "nodes"), ("tasks", "tasks"), ("mean_wait_s", "wait s"),
                 ("mean_response_s", "response s"), ("mean_utilization", "util"), ("energy_j", "energy J"),
                 ("energy_source", "energy from"))


def format_summary(summary: dict[str, Any], title: str = "") -> str:
    """A two-column table of summary metrics (the counts of faults, retries, kills and power-ons
    only where not zero), then one line per node type (``by_node_type``)."""
    from ..core.control import RUN_FIGURES

    rows = [(key, _shown(value)) for key, value in summary.items()
            if not isinstance(value, dict) and not (key in RUN_FIGURES and not value)]
    if any(key in summary for key in RUN_FIGURES) and not any(summary.get(key) for key in RUN_FIGURES):
        rows.append(("faults, retries, kills", "none"))
    w1 = max(len(k) for k, _ in rows)
    w2 = max(len(v) for _, v in rows)
    width = max(w1 + w2 + 3, len(title))
    lines = [title, "─" * width] if title else []
    lines += [f"{k:<{w1}}   {v:>{w2}}" for k, v in rows]
    types = summary.get("by_node_type") or {}
    if types:
        table = [["node type", *(head for _, head in _TYPE_COLUMNS)]]
        table += [[name, *(_shown(fig.get(key)) for key, _ in _TYPE_COLUMNS)] for name, fig in types.items()]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines.append("")
        lines += ["   ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                             strict=True)))
                  for r in table]
    return "\n".join(lines)
