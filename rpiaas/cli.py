"""The ``rpiaas`` command.

Exit codes: 0 success, 1 a run failed (a policy that raised: one line naming
the policy, the hook, the task and the simulated time; ``--debug`` adds the
traceback), 2 bad input (one message naming the file, line and key; never a
traceback), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); an
interrupted or terminated run leaves no run directory.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .control import PolicyError
from .source import InputError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


class _Exit(Exception):
    """Stop with this exit code (the message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the run is abandoned and its partial directory removed."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``--seed abc`` should not print the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


_LIVE_EXTRA = "pip install 'rpiaas[live]'"


def _live_missing() -> str | None:
    """Why the live package cannot be imported (its extra is not installed), or ``None``."""
    try:
        import rpiaas.live  # noqa: F401
    except ModuleNotFoundError as e:
        return f"no module {e.name!r}"
    return None


def _need_live(command: str) -> None:
    """Stop with one line if ``command`` cannot run without the live extra."""
    missing = _live_missing()
    if missing is not None:
        print(f"error: {command} needs the live extra ({_LIVE_EXTRA}): {missing}", file=sys.stderr)
        raise _Exit(EXIT_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rpiaas", description=(
        "Write a cloud allocation policy once, simulate it at any scale, replay it on a "
        "Raspberry Pi testbed, compare the runs."))
    p.add_argument("--version", action="version", version=f"rpiaas {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of a policy that raises (or of any other error)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario in simulation and write a run directory")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", "-o", help="run directory (default: runs/NAME-POLICY-sSEED)")
    run.add_argument("--policy", help="placement policy to use instead of the scenario's")
    run.add_argument("--seed", type=int, help="seed to use instead of the scenario's")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                     help="override a scenario key (repeatable), e.g. workload.generator.count=500")
    run.add_argument("--no-event-log", action="store_true",
                     help="do not write events.jsonl (same as --set event_log=false)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no table")
    live = run.add_argument_group("live mode: replay the scenario on a testbed")
    live.add_argument("--live", action="store_true",
                      help="replay on the testbed of --master instead of simulating")
    live.add_argument("--master", metavar="URL", help="the master, e.g. http://127.0.0.1:8080 "
                      "(default: $RPIAAS_MASTER_URL)")
    live.add_argument("--token-file", help="the master's token (default: $RPIAAS_MASTER_TOKEN)")
    live.add_argument("--timescale", type=float, default=1.0,
                      help="wall seconds per scenario second (0.01 replays 100 times faster)")
    live.add_argument("--task-kind", choices=("sleep", "cpu"), default="sleep",
                      help="run tasks as sleeps of their modelled runtime (exact) or as real work")

    val = sub.add_parser("validate", help="check a scenario without running it")
    val.add_argument("scenario")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    for sp in (run, val):
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of a policy that raises")

    sub.add_parser("policies", help="list built-in and installed policies")

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

    master = sub.add_parser("master", help="run the testbed master: poll agents, keep history, serve the API")
    master.add_argument("config", help="master config YAML file (cluster, store, poll_interval_s, ...)")
    master.add_argument("--host", help="address to listen on instead of the config's listen")
    master.add_argument("--port", type=int, help="port to listen on instead of the config's listen")
    master.add_argument("--store", help="history store instead of the config's: a path or mongodb:// URI")
    master.add_argument("--resume", action="store_true",
                        help="take up the live runs a previous master left unfinished")

    from .netboot.cli import add_netboot_parser

    add_netboot_parser(sub)

    if _live_missing() is None:
        from .testbed.local import add_testbed_parser

        add_testbed_parser(sub)
    else:  # say what is missing when it is used, not at every start
        tb = sub.add_parser("testbed", help=f"a master and agents on this machine (needs {_LIVE_EXTRA})",
                            description=f"Needs the live extra: {_LIVE_EXTRA}")
        tb.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    from .compare import add_compare_parser

    add_compare_parser(sub)

    from .calibrate import add_calibrate_parser

    add_calibrate_parser(sub)
    return p


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM (``kill``, ``timeout``, systemd) stops it as Ctrl-C does."""
    def stop(signum: int, frame: Any) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warning(message: Any, category: Any, filename: str, lineno: int, line: str | None = None) -> str:
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    with _sigterm_as_interrupt(), warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.formatwarning = _warning  # one line, not the warning's source line
        args = _parser().parse_args(argv)
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "policies":
            return _policies()
        if args.command == "sweep":
            from .sweep import run_cli

            return run_cli(args)
        if args.command == "master":
            return _master(args)
        if args.command == "netboot":
            from .netboot.cli import run_netboot

            return run_netboot(args)
        if args.command == "testbed":
            _need_live("rpiaas testbed")
            from .testbed.local import run_testbed

            return run_testbed(args)
        if args.command == "compare":
            from .compare import run_compare

            return run_compare(args)
        if args.command == "calibrate":
            from .calibrate import run_calibrate

            return run_calibrate(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except PolicyError as e:
        if debug and e.__cause__ is not None:
            traceback.print_exception(e.__cause__)
        print(f"error: {e}{'' if debug else ' (--debug shows the traceback)'}", file=sys.stderr)
        return EXIT_FAILED
    except _Exit as e:
        return e.code
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, _Terminated) else "interrupted"
        print(f"{what}; no run directory written", file=sys.stderr)
        return 143 if isinstance(e, _Terminated) else 130
    except Exception as e:  # a fault of rpiaas itself: one line, the traceback on demand
        if debug:
            traceback.print_exc()
        message = " ".join(str(e).split())[:300]
        print(f"error: internal error: {type(e).__name__}: {message}"
              f"{'' if debug else ' (--debug shows the traceback)'}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _load(args: argparse.Namespace) -> Any:
    from .scenario import load_scenario, parse_overrides

    notes: list[str] = []
    overrides = parse_overrides(args.overrides, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if getattr(args, "no_event_log", False):
        overrides.append(("event_log", False))
    return load_scenario(args.scenario, overrides,
                         seed=getattr(args, "seed", None), policy=getattr(args, "policy", None))


def _trace_report(sc: Any) -> None:
    """What a trace workload left out, on stderr."""
    report = getattr(sc.workload, "report", None)
    if report is not None and hasattr(report, "describe"):
        print(f"trace: {report.describe()}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    sc = _load(args)
    n = len(sc.cluster.nodes)
    count = sc.workload.count
    print(f"{args.scenario}: ok — {n} nodes, {count if count is not None else 'endless'} tasks, "
          f"policy {sc.policy.name}, seed {sc.seed}")
    _trace_report(sc)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from .sim import simulate

    sc = _load(args)
    if not args.quiet:
        _trace_report(sc)
    mode = "live" if args.live else "sim"
    out = Path(args.out) if args.out else Path("runs") / (
        f"{sc.name}-{sc.policy.name}-s{sc.seed}" + ("-live" if args.live else ""))
    path: Path | None
    if args.live:
        summary, path = _run_live(args, sc, out)
    else:
        summary, path = simulate(sc, out, progress=not args.quiet)
    if not args.quiet:
        print(format_summary(summary, title=f"{sc.name} · {sc.policy.name} · seed {sc.seed} · {mode}"))
    print(f"run directory: {path}")
    return EXIT_OK


def _run_live(args: argparse.Namespace, sc: Any, out: Path) -> tuple[dict[str, Any], Path]:
    import os

    _need_live("rpiaas run --live")
    from .master.client import MasterError, run_live
    from .master.config import check_token, read_token

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
        raise _Exit(EXIT_INPUT if e.status is not None and 400 <= e.status < 500
                    else EXIT_FAILED) from None


def _master(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    _need_live("rpiaas master")
    from .master.config import check_store, load_master_config

    config = load_master_config(args.config)
    host, port = config.listen
    if args.port is not None:
        if not 0 <= args.port < 65536:
            print(f"error: --port: expected a port 0-65535, got {args.port}", file=sys.stderr)
            return EXIT_INPUT
        port = args.port
    changes: dict[str, Any] = {"listen": (args.host or host, port), "resume": args.resume}
    if args.store is not None:
        try:
            changes["store"] = check_store(args.store)
        except ValueError as e:
            print(f"error: --store: {e}", file=sys.stderr)
            return EXIT_INPUT
    config = dataclasses.replace(config, **changes)
    try:
        from aiohttp import web

        from .master import create_app
    except ImportError as e:  # aiohttp comes with the agent, not with the simulator
        print(f"error: the master needs aiohttp ({e})", file=sys.stderr)
        return EXIT_INPUT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        web.run_app(create_app(config), host=config.listen[0], port=config.listen[1],
                    print=lambda msg: print(msg, flush=True))
    except OSError as e:  # the port is taken, the store's directory is missing, ...
        print(f"error: master: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _policies() -> int:
    from .plugins import available_policies

    broken: dict[str, str] = {}
    policies = available_policies(broken)
    for message in broken.values():
        print(f"error: {message}", file=sys.stderr)
    rows = [(info.name, info.origin, info.summary) for info in policies.values()]
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    for name, origin, summary in rows:
        print(f"{name:<{w1}}  {origin:<{w2}}  {summary}")
    return EXIT_INPUT if broken else EXIT_OK


_UNITS = {"_s": "s", "_j": "J", "_w": "W"}


def format_summary(summary: dict[str, Any], title: str = "") -> str:
    """A two-column table of summary metrics."""
    rows = []
    for key, value in summary.items():
        if value is None:
            shown = "—"
        elif isinstance(value, float):
            shown = f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
        else:
            shown = f"{value:,}"
        rows.append((key, shown))
    w1 = max(len(k) for k, _ in rows)
    w2 = max(len(v) for _, v in rows)
    width = max(w1 + w2 + 3, len(title))
    lines = [title, "─" * width] if title else []
    lines += [f"{k:<{w1}}   {v:>{w2}}" for k, v in rows]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
