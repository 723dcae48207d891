"""Detached processes found again by pid: what the testbeds and the ``process``/``qemu`` drivers share.

A testbed's agents and VMs outlive the command that started them, and the
master may end and start them again, so each is found by pid; a pid is taken
as the same process only while its start time (from ``/proc``) is the one
recorded, so nothing ever signals a stranger that took the pid over.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

__all__ = ["DROP_ENV", "pid_alive", "proc_stat", "reap", "start_process"]

DROP_ENV = ("RPIAAS_AGENT_", "RPIAAS_MASTER_")  # they would override the testbed's own tokens


def proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` from /proc, or None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("gone", 0) if Path("/proc/self").exists() else None
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[19])


def pid_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether process ``pid``, started at ``start_ticks``, still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # another user's: ours only if its start time is the one recorded (a virtual
        # testbed runs as root, and `status` may be asked by anyone)
        if start_ticks is None:
            return False
    stat = proc_stat(pid)
    if stat is None:
        return True
    state, ticks = stat
    return state not in ("gone", "Z", "X") and (start_ticks is None or ticks == start_ticks)


def reap(pid: int) -> None:
    """Collect the exit of ``pid`` if it is an ended child of this process (no zombie left)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def start_process(argv: list[str], log: Path, cwd: Path, *, env_path: str | None = None,
                  pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None
                  ) -> subprocess.Popen[bytes]:
    """``argv`` detached (a session of its own), its output appended to ``log`` (mode 600).

    ``env`` (default: this process's, without ``RPIAAS_AGENT_*``/``RPIAAS_MASTER_*``) is its
    environment; ``env_path`` replaces its ``PATH``.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(DROP_ENV)}
    else:
        env = dict(env)
    if env_path is not None:
        env["PATH"] = env_path
    # logs are the owner's alone: they name nodes, addresses and tasks (never a credential)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # an older log keeps its mode otherwise
    with os.fdopen(fd, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env, pass_fds=pass_fds,
                                start_new_session=True)  # a ^C in the terminal leaves them be
