"""What the command modules share: exit codes, one-line errors, the live-extra check, scenario loading.

Exit codes: 0 success, 1 a run failed, 2 bad input, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_OK", "LIVE_EXTRA", "Exit", "Parser", "live_missing",
           "load", "need_live", "trace_report"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
LIVE_EXTRA = "pip install 'rpiaas[live]'"
LIVE_PACKAGES = ("aiohttp", "pysnmp", "cryptography")  # what the live extra installs


class Exit(Exception):
    """Stop with this exit code (the message is already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``--seed abc`` should not print the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {self.prog}: {message}{self.suggestion(message)} "
                              f"(see {self.prog} --help)\n")

    def suggestion(self, message: str) -> str:
        """A did-you-mean for argparse's ``message`` about a mistyped command, choice or option."""
        from ..inputs.errors import did_you_mean

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        unknown = re.match(r"unrecognized arguments: (-\S+)", message)
        if unknown:
            options = [o for action in self._actions for o in action.option_strings]
            return did_you_mean(unknown.group(1).split("=")[0], options)
        return ""


def live_missing(quick: bool = False) -> str | None:
    """Why the live package cannot be imported (its extra is not installed), or ``None``.

    ``quick``: only look for the extra's packages, without importing them (the master and
    aiohttp are too slow to import for every command's parser).
    """
    if quick:
        import importlib.util

        for name in LIVE_PACKAGES:
            if importlib.util.find_spec(name) is None:
                return f"no module {name!r}"
        return None
    try:
        import rpiaas.master  # noqa: F401
    except ModuleNotFoundError as e:
        return f"no module {e.name!r}"
    return None


def need_live(command: str) -> None:
    """Stop with one line if ``command`` cannot run without the live extra."""
    missing = live_missing()
    if missing is not None:
        print(f"error: {command} needs the live extra ({LIVE_EXTRA}): {missing}", file=sys.stderr)
        raise Exit(EXIT_INPUT)


def load(args: argparse.Namespace) -> Any:
    """The scenario of ``args`` with its ``--set`` overrides (notes on how values were read on stderr)."""
    from ..scenario import load_scenario, parse_overrides

    notes: list[str] = []
    overrides = parse_overrides(args.overrides, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if getattr(args, "no_event_log", False):
        overrides.append(("event_log", False))
    return load_scenario(args.scenario, overrides,
                         seed=getattr(args, "seed", None), policy=getattr(args, "policy", None))


def trace_report(sc: Any) -> None:
    """What a trace workload left out, on stderr."""
    report = getattr(sc.workload, "report", None)
    if report is not None and hasattr(report, "describe"):
        print(f"trace: {report.describe()}", file=sys.stderr)
