"""The ``rpiaas`` command: :func:`main` and the table of commands, one module each.

Each command module has ``add_parser(sub)`` (its subparser, with
``set_defaults(run=run)``) and ``run(args) -> int``; it parses and prints, and
leaves the work to the library.  Command modules import cheaply and without
the optional extras, so ``rpiaas --help`` works on a core install.

A command module imports the library it uses when it runs, not when the parser is built, and
so does :func:`main`'s handling of errors: ``rpiaas --version`` and ``--help`` import neither
numpy nor the control plane, and each command only what it uses.

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
from typing import Any

from .. import __version__
from ..threads import one_blas_thread
from . import (
    calibrate,
    compare,
    gantt,
    image,
    master,
    netboot,
    new_policy,
    policies,
    registry,
    run,
    sweep,
    testbed,
    traces,
    validate,
)
from .common import EXIT_FAILED, EXIT_INPUT, Exit, Parser

__all__ = ["COMMANDS", "main"]

COMMANDS = (run, validate, traces, policies, new_policy, sweep, master, netboot, testbed, registry, image, compare,
            gantt, calibrate)
"""The command modules, in the order ``rpiaas --help`` lists them."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the run is abandoned and its partial directory removed."""


def _name(command: Any) -> str:
    """The command a module is: its module's name, ``_`` written ``-`` (``new_policy``: ``new-policy``)."""
    return str(command.__name__).rsplit(".", 1)[1].replace("_", "-")


def _named(argv: Sequence[str]) -> Any:
    """The command module ``argv`` names (its first argument that is no option: ``rpiaas``'s own
    options take no value), or ``None``."""
    for arg in argv:
        if arg == "--":
            break
        if not arg.startswith("-"):
            return next((c for c in COMMANDS if _name(c) == arg), None)
    return None


def _parser(argv: Sequence[str] = ()) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``rpiaas`` parser and its commands' parsers by name: only the parser of the command
    ``argv`` names (each command's parser may read what its defaults need), every command's
    when it names none (``rpiaas --help`` lists them, a mistyped command is told the names)."""
    p = Parser(prog="rpiaas", description=(
        "Write a cloud allocation policy once, simulate it at any scale, replay it on a "
        "Raspberry Pi testbed, compare the runs."))
    p.add_argument("--version", action="version", version=f"rpiaas {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of a policy that raises (or of any other error)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _named(argv)
    for command in COMMANDS if named is None else (named,):
        command.add_parser(sub)
    return p, dict(sub.choices)


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
    # a run's note comes from a run, which imported rundir.metrics: no module imported to tell
    metrics = sys.modules.get("rpiaas.rundir.metrics")
    note = metrics is not None and issubclass(category, metrics.RunNote)
    return f"{'note' if note else 'warning'}: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rpiaas ARGV...``; the exit code."""
    one_blas_thread()  # before numpy is imported (rpiaas.threads says why)
    with _sigterm_as_interrupt(), warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.formatwarning = _warning  # one line, not the warning's source line
        argv = sys.argv[1:] if argv is None else argv
        parser, commands = _parser(argv)
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # blamed on the command's own parser, so its error points to its own --help
            commands.get(getattr(args, "command", None) or "", parser).error(
                f"unrecognized arguments: {' '.join(unknown)}")
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    try:
        code: int = args.run(args)
        return code
    except Exit as e:
        return e.code
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, _Terminated) else "interrupted"
        print(f"{what}; no run directory written", file=sys.stderr)
        return 143 if isinstance(e, _Terminated) else 130
    except Exception as e:
        return _failed(e, debug)


def _failed(e: Exception, debug: bool) -> int:
    """Say what went wrong in one line (a traceback too with ``debug``); the exit code."""
    from ..inputs.errors import InputError  # here: only a command that fails needs them
    from ..policy.base import PolicyError

    if isinstance(e, (InputError, FileExistsError)):
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, PolicyError):
        if debug:  # the policy's own traceback where it raised, else where its answer was refused
            traceback.print_exception(e.__cause__ if e.__cause__ is not None else e)
        print(f"error: {e}{'' if debug else ' (--debug shows the traceback)'}", file=sys.stderr)
        return EXIT_FAILED
    # a fault of rpiaas itself: one line, the traceback on demand
    if debug:
        traceback.print_exception(e)
    message = " ".join(str(e).split())[:300]
    print(f"error: internal error: {type(e).__name__}: {message}"
          f"{'' if debug else ' (--debug shows the traceback)'}", file=sys.stderr)
    return EXIT_FAILED
