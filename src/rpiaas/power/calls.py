"""What every driver and meter shares: one-line errors without credentials, and programs run with a timeout.

A :class:`~rpiaas.power.base.PowerError` reads ``NODE: DRIVER ACTION: WHY`` on
one line.  Whatever the why quotes (a program's output, a library's message,
a URL) goes through :func:`rpiaas.auth.redact` with the spec's credentials
first: a plug password in a URL or an SNMP community in a library's message
never reaches the master's events or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from ..auth import redact
from .base import PowerError

__all__ = ["ProgramResult", "failure", "one_line", "run_program"]

_MAX_DETAIL_CHARS = 200


def one_line(text: str, secrets: list[str]) -> str:
    """``text`` redacted, on one line, at most a couple of hundred characters."""
    line = " ".join(redact(text, secrets).split())
    return line if len(line) <= _MAX_DETAIL_CHARS else line[:_MAX_DETAIL_CHARS - 3] + "..."


def failure(node: str, name: str, action: str, why: str, secrets: list[str]) -> PowerError:
    """The error of ``action`` (``on``, ``off``, ``state``, ``read``) by driver or meter ``name``."""
    return PowerError(one_line(f"{node}: {name} {action}: {why}", secrets))


class ProgramResult:
    """A program's exit code and its output, as text."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def last_words(self) -> str:
        """The last non-empty line of its error output (else of its output), for an error message."""
        for text in (self.err, self.out):
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return "no output"


async def run_program(argv: list[str], timeout_s: float) -> ProgramResult:
    """Run ``argv`` (no shell) to its end; ``TimeoutError`` after ``timeout_s`` (its process group
    killed), ``OSError`` if it cannot start."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        raise
    assert proc.returncode is not None
    return ProgramResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_checked(argv: list[str], timeout_s: float,
                      fail: Callable[[str], PowerError]) -> ProgramResult:
    """:func:`run_program`, its failures (a timeout, no such program, a non-zero exit) as
    ``fail(why)``."""
    try:
        done = await run_program(argv, timeout_s)
    except asyncio.TimeoutError:
        raise fail(f"no end within {timeout_s:g} s (killed)") from None
    except OSError as e:
        raise fail(f"cannot run {argv[0]}: {e.strerror or e}") from None
    if done.code != 0:
        raise fail(f"exit code {done.code}: {done.last_words()}")
    return done
