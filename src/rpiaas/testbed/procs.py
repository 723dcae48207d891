"""The processes of a local testbed: start them detached, tell them from later ones, stop them.

A testbed outlives the command that started it, so its processes are found
again by pid; a pid is taken as the same process only while its start time
(from ``/proc``) is the one recorded, so a stop never signals a stranger.
The master is stopped first, so it records no agent going offline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..power.detached import pid_alive, proc_stat, start_process
from .plan import HOST, TestbedError

__all__ = [
    "Proc",
    "agent_env",
    "complaints",
    "executable",
    "get_json",
    "pid_alive",
    "proc_stat",
    "start_process",
    "stop_all",
    "tail",
    "this_start",
    "wait_for_log",
    "wait_online",
    "wait_until",
    "write_json",
    "write_private",
]


# what of this process's environment an agent gets (recorded for the master, which starts
# it again): what finds Python and the package, never a credential a user may keep there
_ENV_KEYS = ("PATH", "PYTHONPATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
             "VIRTUAL_ENV")
_ENV_PREFIXES = ("LC_", "COVERAGE_")


def agent_env() -> dict[str, str]:
    """The environment of a testbed's agents (local, emulated), the first start and every later one."""
    return {k: v for k, v in os.environ.items() if k in _ENV_KEYS or k.startswith(_ENV_PREFIXES)}


@dataclass(frozen=True)
class Proc:
    """One process of the testbed; ``start_ticks`` tells it from a later process with its pid."""

    name: str
    pid: int
    port: int
    log: str
    start_ticks: int | None = None
    cpu_set: list[int] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie does not)."""
        return pid_alive(self.pid, self.start_ticks)


def _signal(p: Proc, sig: signal.Signals) -> None:
    if not p.alive():
        return
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(p.pid, sig)  # each process leads a session (and group) of its own
        else:
            os.kill(p.pid, sig)


def _wait_gone(procs: list[Proc], timeout_s: float) -> list[Proc]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if p.alive()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def stop_all(procs: list[Proc], timeout_s: float) -> list[str]:
    """SIGTERM the master (first, so it records no agent going offline), then the agents."""
    lines: list[str] = []
    master, agents = procs[:1], procs[1:]
    for group in (master, agents):
        running = [p for p in group if p.alive()]
        lines += [f"{p.name}: already gone" for p in group if p not in running]
        for p in running:
            _signal(p, signal.SIGTERM)
        stubborn = _wait_gone(running, timeout_s)
        for p in stubborn:
            _signal(p, signal.SIGKILL)
        still = _wait_gone(stubborn, 5.0)
        if still:
            raise TestbedError("still running after SIGKILL: "
                               + ", ".join(f"{p.name} (pid {p.pid})" for p in still))
        lines += [f"{p.name}: {'killed (no exit after SIGTERM)' if p in stubborn else 'stopped'}"
                  f" (pid {p.pid})" for p in running]
    return lines


def executable(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not os.access(path, os.X_OK):
        raise TestbedError(f"{name} is not installed beside {sys.executable} "
                           "(install the agent: pip install ./agent)")
    return str(path)


def get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read())


def tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text[-lines:])


def write_private(path: Path, text: str) -> None:
    """Write ``text`` and a newline into ``path``, readable by its owner only (mode 600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text + "\n")


def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON into ``path``, whole or not at all."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def complaints(log: str, lines: int = 6) -> str:
    """The last lines of ``log`` that say what went wrong, else its last lines."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    bad = [line for line in text if _COMPLAINT.search(line)]
    return "\n".join("    " + line for line in bad[-lines:]) if bad else tail(log)


_COMPLAINT = re.compile(r"(?i)\b(error|fail\w*|fatal|cannot|denied|exited|refused|crit)\b")


def wait_until(ready: Any, proc: Proc, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not proc.alive():
            raise TestbedError(f"{proc.name} exited before {what} appeared; from "
                               f"{proc.log}:\n{complaints(proc.log)}")
        if time.monotonic() > deadline:
            raise TestbedError(f"{proc.name}: no {what} after {timeout_s:g} s; the end of "
                               f"{proc.log}:\n{tail(proc.log)}")
        time.sleep(0.05)


def wait_for_log(proc: Proc, text: str, timeout_s: float) -> None:
    """Wait until this start of ``proc`` logs ``text`` (not an earlier start: logs are appended,
    each start after a ``--- `` header line)."""
    def logged() -> bool:
        try:
            log = Path(proc.log).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return text in log[log.rfind("\n--- ") + 1:]
    wait_until(logged, proc, repr(text), timeout_s)


def this_start(log: str, lines: int = 15) -> str:
    """The last lines ``log`` has since its process's last start (its last ``--- `` header)."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "    (no log)"
    text = text[text.rfind("\n--- ") + 1:]
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def wait_online(processes: Sequence[Proc], summary: Callable[[], dict[str, Any]], nodes: int,
                timeout_s: float, step_s: float) -> str | None:
    """Wait until the master's ``summary()`` counts ``nodes`` online: ``None`` then; else, at
    ``timeout_s``, what it last said ("3 of 4 online", or that it did not answer).  A process
    of ``processes`` that exits meanwhile raises :class:`TestbedError` with the end of its log."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while True:
        dead = [p for p in processes if not p.alive()]
        if dead:
            raise TestbedError("".join(f"{p.name} exited at start; the end of {p.log}:\n"
                                       f"{tail(p.log)}\n" for p in dead).rstrip())
        with contextlib.suppress(OSError, ValueError):
            last = summary()
            if last.get("online") == nodes:
                return None
        if time.monotonic() >= deadline:
            return "the master did not answer" if last is None else f"{last.get('online')} of {nodes} online"
        time.sleep(step_s)

