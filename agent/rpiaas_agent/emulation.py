"""Readings of an emulated node: the CPU and memory of the agent's own tasks, not the host's.

On a local testbed several agents run on one machine, each standing for a
node of some type (a Raspberry Pi 4B: 4 cores, 4096 MB).  The host's
readings would be the same on every agent, whatever each one's tasks do.
With ``emulate`` on, the agent reports the node it emulates instead:

* CPU: a counter of the CPU seconds (user + system) of its tasks, ``busy_s``:
  every ended task's whole CPU time (``wait4``'s rusage, counted by the task
  manager when the task ends, so a task that starts and ends between two
  readings is counted all the same) plus the CPU time so far of every
  process of the running tasks' process groups.  The counter never goes
  down.  Usage per emulated core (the node's ``cores``) is its difference
  over the last interval; busy core-seconds fill core 0 first, then core 1,
  as a single-core task on a real node shows one busy core.
* Memory: the resident set of those processes against the node's ``mem_mb``.

The operating system and the agent itself are not counted: an idle emulated
node reads 0 %, as the idle power of a node type's model is that of its
operating system at rest.  The agent's own CPU time is reported apart
(``cpu.agent_busy_s``): on a shared machine it is the cost of emulating,
which a real node's agent does not pay.  Process groups are read from
``/proc`` (Linux).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Protocol

from .readings import CpuSampler

__all__ = ["EmulatedSampler", "GroupUsage", "group_usage", "spread_over_cores"]

log = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class GroupUsage:
    """CPU seconds and resident bytes of the processes of one process group, now."""

    __slots__ = ("cpu_s", "rss_bytes")

    def __init__(self, cpu_s: float = 0.0, rss_bytes: int = 0) -> None:
        self.cpu_s = cpu_s
        self.rss_bytes = rss_bytes


def group_usage(groups: Iterable[int], proc: str | os.PathLike[str] = "/proc"
                ) -> dict[int, GroupUsage]:
    """Usage of each process group in ``groups``, summed over its processes, from ``/proc``.

    A process's CPU time counts the children it has waited for (``cutime``,
    ``cstime``), so the time of a finished child is not lost; one not yet
    waited for still has its own entry.  A group with no process left is 0.
    """
    wanted = {g: GroupUsage() for g in groups}
    if not wanted:
        return wanted
    root = Path(proc)
    try:
        entries = [e for e in os.listdir(root) if e.isdigit()]
    except OSError:
        return wanted
    for pid in entries:
        try:
            text = (root / pid / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:  # gone since the listing
            continue
        # the name in (...) may hold spaces and parentheses: fields start after the last ")"
        fields = text[text.rindex(")") + 2:].split()
        try:
            pgrp = int(fields[5 - 3])
            usage = wanted.get(pgrp)
            if usage is None:
                continue
            ticks = sum(int(fields[i - 3]) for i in (14, 15, 16, 17))
            usage.cpu_s += ticks / _CLOCK_TICKS
            usage.rss_bytes += max(0, int(fields[24 - 3])) * _PAGE_BYTES
        except (ValueError, IndexError):
            continue
    return wanted


def spread_over_cores(busy_cores: float, cores: int) -> list[float]:
    """``busy_cores`` (core-seconds per second) laid on ``cores`` cores, core 0 first, each in [0, 1].

    >>> spread_over_cores(1.5, 4)
    [1.0, 0.5, 0.0, 0.0]
    """
    return [round(min(1.0, max(0.0, busy_cores - i)), 4) for i in range(cores)]


class _Tasks(Protocol):
    """What the sampler needs of :class:`rpiaas_agent.tasks.TaskManager`."""

    cores: int
    mem_mb: float
    ended_cpu_s: float

    def tasks(self) -> list[Any]: ...


class EmulatedSampler(CpuSampler):
    """CPU usage and memory of the node the agent emulates, from its tasks alone (see the module).

    ``usage_ratio`` has one entry per emulated core; :meth:`memory` has the
    shape of :func:`rpiaas_agent.readings.memory`, against the node's ``mem_mb``.
    """

    def __init__(self, interval_s: float, tasks: _Tasks, proc: str = "/proc",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval_s)
        self.tasks = tasks
        self.cores = tasks.cores
        self.proc = proc
        self.clock = clock
        self.rss_bytes = 0
        # running task id -> the most CPU seconds seen of its group (a reaped group reads 0)
        self._seen: dict[str, float] = {}
        self._counter_s = 0.0  # the highest value busy_s() has given
        self._last: tuple[float, float] | None = None  # (clock, cumulative CPU seconds)

    def busy_s(self) -> float:
        """CPU seconds of every task since the agent started: ended ones whole (the task
        manager's rusage), running ones so far (their groups in ``/proc``).  Never decreases."""
        running: dict[str, int] = {}
        for task in self.tasks.tasks():
            if task.state == "running" and task.pid is not None:
                running[task.spec.id] = task.pid
        usage = group_usage(running.values(), self.proc)
        rss = 0
        seen: dict[str, float] = {}
        for tid, pid in running.items():
            now = usage[pid]
            seen[tid] = max(self._seen.get(tid, 0.0), now.cpu_s)
            rss += now.rss_bytes
        self._seen = seen  # a task no longer running is in ended_cpu_s, whole
        self.rss_bytes = rss
        # a group read a tick above its final rusage would step the counter back: it waits
        self._counter_s = max(self._counter_s, self.tasks.ended_cpu_s + sum(seen.values()))
        return self._counter_s

    def sample(self) -> None:
        """Usage per emulated core since the previous sample; the first one is the reference."""
        t, total = self.clock(), self.busy_s()
        if self._last is not None and t > self._last[0]:
            busy = max(0.0, total - self._last[1]) / (t - self._last[0])
            self.usage_ratio = spread_over_cores(busy, self.cores)
        self._last = (t, total)

    async def run(self) -> None:
        """Sample every ``interval_s`` until cancelled."""
        self.sample()
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.sample()
            except Exception:  # a reading must never stop the sampler
                log.exception("cannot read the tasks' CPU usage")
                self.usage_ratio = None

    def memory(self) -> dict[str, Any]:
        """The tasks' resident memory against the emulated node's memory, in bytes."""
        total = int(self.tasks.mem_mb * (1 << 20))
        used = min(self.rss_bytes, total)
        return {"total_bytes": total, "available_bytes": total - used, "used_bytes": used,
                "used_ratio": round(used / total, 4) if total else 0.0}
