"""The cgroup file systems: where their hierarchies are mounted, and their files read and
written, for :mod:`rpiaas_agent.cgroups` (which owns the tasks' cgroups).

v1 and v2 (see :mod:`rpiaas_agent.cgroups` for what is tested where).  Standard
library only: the agent runs on Python 3.9.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass, field

__all__ = ["V1_CONTROLLERS", "V2_CONTROLLERS", "Layout", "alive", "detect", "eventfd", "keyed",
           "kill_tree", "mkdirs_v1_cpuset", "number", "pids", "read", "rmdir_tree", "tree",
           "unavailable", "write"]

V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "cpuset")
V2_CONTROLLERS = ("cpu", "memory", "cpuset")
KILL_WAIT_S = 2.0


@dataclass(frozen=True)
class Layout:
    """Where the cgroup hierarchies are: ``version`` 1 or 2, and for each controller the
    directory of its hierarchy's root (v2: the one unified root for all)."""

    version: int
    dirs: dict[str, str] = field(default_factory=dict)
    # the other hierarchies (v1: blkio, pids, ..., a hybrid host's unified one): a container
    # engine makes its cgroups there too, at the same path, and they go with the task's
    others: tuple[str, ...] = ()

    def unique_dirs(self) -> list[str]:
        """Each hierarchy the task's processes join, once (co-mounted controllers share one)."""
        return sorted(set(self.dirs.values()))

    def all_dirs(self) -> list[str]:
        """Every hierarchy: where a task's cgroup (and an engine's below it) may have a directory."""
        return sorted(set(self.dirs.values()) | set(self.others))


def detect(mountinfo: str = "/proc/self/mountinfo") -> Layout | str:
    """The cgroup layout from ``mountinfo``, or a sentence saying why there is none usable.

    v1 wherever the four controllers are mounted as v1 hierarchies (a hybrid host's
    empty unified hierarchy beside them is ignored); else v2 where a cgroup2 file
    system offers ``cpu`` and ``memory``.
    """
    try:
        with open(mountinfo, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return f"cannot read {mountinfo}: {e.strerror}"
    v1: dict[str, str] = {}
    v2: list[str] = []
    points: list[str] = []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point, fstype, options = unescape(fields[4]), tail[0], tail[2].split(",")
        if fstype in ("cgroup", "cgroup2"):
            points.append(point)
        if fstype == "cgroup":
            for ctrl in V1_CONTROLLERS:
                if ctrl in options:
                    v1.setdefault(ctrl, point)
        elif fstype == "cgroup2":
            v2.append(point)
    if all(c in v1 for c in V1_CONTROLLERS):
        used = {v1[c] for c in V1_CONTROLLERS}
        return Layout(1, {c: v1[c] for c in V1_CONTROLLERS}, tuple(p for p in points if p not in used))
    for point in v2:
        offered = read(os.path.join(point, "cgroup.controllers")).split()
        if "cpu" in offered and "memory" in offered:
            return Layout(2, {c: point for c in V2_CONTROLLERS})
    if v1:
        missing = [c for c in V1_CONTROLLERS if c not in v1]
        return f"cgroup v1 without the {', '.join(missing)} controller(s)"
    if v2:
        return "cgroup v2 without the cpu and memory controllers"
    return "no cgroup file system is mounted"


def unavailable(layout: Layout | str | None = None) -> str:
    """Why tasks cannot get cgroups here ("" where they can)."""
    found = detect() if layout is None else layout
    if isinstance(found, str):
        return found
    if os.geteuid() != 0:
        return "the agent is not root (making cgroups needs root)"
    return ""


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (in this PID namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def eventfd() -> int:
    """A non-blocking eventfd (``os.eventfd`` from Python 3.10; libc's before)."""
    flags = os.O_NONBLOCK | os.O_CLOEXEC
    make = getattr(os, "eventfd", None)
    if make is not None:
        return int(make(0, flags))
    import ctypes

    fd = int(ctypes.CDLL(None, use_errno=True).eventfd(0, flags))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "eventfd")
    return fd


def unescape(path: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def read(path: str) -> str:
    """A control file's text; "" where it cannot be read (absent on this kernel, or gone)."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return ""


def write(path: str, value: str) -> None:
    """Write a control file (OSError if the kernel refuses the value)."""
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


def number(text: str) -> int | None:
    """The integer a control file starts with; None if none."""
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def keyed(text: str, key: str) -> int | None:
    """The number after ``key`` in a ``key value`` per line file (``cpu.stat``, ``memory.events``)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return number(parts[1])
    return None


def tree(path: str) -> list[str]:
    """``path`` and every cgroup below it, deepest first."""
    out: list[str] = []
    for top, subdirs, _ in os.walk(path, topdown=False):
        del subdirs
        out.append(top)
    return out


def pids(path: str) -> list[int]:
    """The processes in cgroup ``path`` and below."""
    out: list[int] = []
    for d in tree(path):
        for word in read(os.path.join(d, "cgroup.procs")).split():
            with contextlib.suppress(ValueError):
                out.append(int(word))
    return out


def kill_tree(path: str, wait_s: float = KILL_WAIT_S) -> bool:
    """SIGKILL every process in ``path`` and below until none is left; whether none is."""
    kill_file = os.path.join(path, "cgroup.kill")  # v2, Linux 5.14 and later: atomically
    if os.path.exists(kill_file):
        with contextlib.suppress(OSError):
            write(kill_file, "1")
    deadline = time.monotonic() + wait_s
    while True:
        found = pids(path)
        if not found:
            return True
        for pid in found:  # again and again: a process may fork while its group is killed
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= deadline:
            return not pids(path)
        time.sleep(0.02)


def rmdir_tree(path: str) -> bool:
    """Remove cgroup ``path`` and those below it, deepest first; whether all went."""
    ok = True
    for d in tree(path):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            ok = False
    return ok


def mkdirs_v1_cpuset(root: str, rel: list[str]) -> str:
    """Make ``root/rel...`` in a v1 cpuset hierarchy, each new level given its parent's CPUs
    and memory nodes (a v1 cpuset starts with none, and takes no process without them)."""
    path = root
    for part in rel:
        parent, path = path, os.path.join(path, part)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(os.path.join(path, name)).strip():
                write(os.path.join(path, name), read(os.path.join(parent, name)).strip())
    return path

