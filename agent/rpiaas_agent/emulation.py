"""Readings of an emulated node: the CPU and memory of the agent's own tasks, not the host's.

On a local testbed several agents run on one machine, each standing for a
node of some type (a Raspberry Pi 4B: 4 cores, 4096 MB).  The host's
readings would be the same on every agent, whatever each one's tasks do.
With ``emulate`` on, the agent reports the node it emulates instead:

* CPU: the CPU time (user + system) of every process of its tasks' process
  groups over the last interval, per emulated core (the node's ``cores``).
  Busy core-seconds fill core 0 first, then core 1, as a single-core task on
  a real node shows one busy core.  Ended tasks count to their end (their
  final CPU time from ``wait4``), so a short task is not lost between samples.
* Memory: the resident set of those processes against the node's ``mem_mb``.

The operating system and the agent itself are not counted: an idle emulated
node reads 0 %.  Process groups are read from ``/proc`` (Linux).
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
        # task id -> the most CPU seconds seen of it while it ran (a reaped group reads 0)
        self._seen: dict[str, float] = {}
        self._ended_cpu_s = 0.0  # final CPU seconds of the tasks that ended since the start
        self._last: tuple[float, float] | None = None  # (clock, cumulative CPU seconds)

    def _cumulative_cpu_s(self) -> float:
        """CPU seconds of every task since the agent started: ended ones whole, running ones so far."""
        running: dict[str, int] = {}
        for task in self.tasks.tasks():
            tid = task.spec.id
            if task.state == "running":
                if task.pid is not None:
                    running[tid] = task.pid
            elif tid in self._seen:  # ended since the last sample: count it to its end
                self._ended_cpu_s += max(self._seen.pop(tid), task.cpu_s or 0.0)
        usage = group_usage(running.values(), self.proc)
        rss = 0
        for tid, pid in running.items():
            now = usage[pid]
            self._seen[tid] = max(self._seen.get(tid, 0.0), now.cpu_s)
            rss += now.rss_bytes
        # a task that ended and was forgotten between two samples (max_finished_tasks = 0)
        for tid in [t for t in self._seen if t not in running]:
            self._ended_cpu_s += self._seen.pop(tid)
        self.rss_bytes = rss
        return self._ended_cpu_s + sum(self._seen.values())

    def sample(self) -> None:
        """Usage per emulated core since the previous sample; the first one is the reference."""
        t, total = self.clock(), self._cumulative_cpu_s()
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
