"""A task's own control group: where its CPU time and peak memory are read, and its OOM kills seen.

A small reader of cgroup v1 (``cpuacct``, ``memory``) and v2 (``cpu.stat``, ``memory.peak``)
for the tasks the agent runs; :meth:`TaskCgroup.create` answers ``None`` where the agent
cannot make groups (not root, no cgroup file system).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

__all__ = ["ROOT", "TaskCgroup"]

ROOT = Path("/sys/fs/cgroup")
_V1 = ("cpuacct", "memory")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class TaskCgroup:
    """The group ``/rpiaas/<agent>/<task>`` in each hierarchy it uses."""

    def __init__(self, relative: str, v2: bool) -> None:
        self.relative = relative
        self.v2 = v2

    @classmethod
    def create(cls, agent_name: str, task_id: str, cores: int, mem_mb: float,
               cpus: tuple[int, ...]) -> TaskCgroup | None:
        """Make the task's group (no limits set here: the engine or the caller sets them)."""
        relative = f"/rpiaas/{_SAFE.sub('_', agent_name)}/{_SAFE.sub('_', task_id)}"
        v2 = (ROOT / "cgroup.controllers").exists()
        group = cls(relative, v2)
        group.remove()  # a stale group of an earlier agent's task of this id: its counters are not ours
        try:
            for d in group.dirs():
                d.mkdir(parents=True)
        except OSError:
            return None
        return group

    def dirs(self) -> list[Path]:
        rel = self.relative.lstrip("/")
        return [ROOT / rel] if self.v2 else [ROOT / c / rel for c in _V1]

    def path(self, controller: str = "memory") -> str:
        """The group's path within its hierarchy: what ``--cgroup-parent`` takes."""
        return self.relative

    def add(self, pid: int) -> None:
        for d in self.dirs():
            (d / "cgroup.procs").write_text(str(pid))

    def usage(self) -> tuple[float | None, float | None]:
        """CPU seconds and peak memory (MiB) of everything that ran in the group."""
        rel = self.relative.lstrip("/")
        if self.v2:
            stat = _read(ROOT / rel / "cpu.stat") or ""
            m = re.search(r"^usage_usec (\d+)", stat, re.M)
            peak = _read(ROOT / rel / "memory.peak")
            return (int(m.group(1)) / 1e6 if m else None,
                    int(peak) / (1 << 20) if peak and peak.strip().isdigit() else None)
        cpu = _read(ROOT / "cpuacct" / rel / "cpuacct.usage")
        peak = _read(ROOT / "memory" / rel / "memory.max_usage_in_bytes")
        return (int(cpu) / 1e9 if cpu and cpu.strip().isdigit() else None,
                int(peak) / (1 << 20) if peak and peak.strip().isdigit() else None)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group (or a group below) for its memory limit."""
        rel = self.relative.lstrip("/")
        text = _read(ROOT / rel / "memory.events") if self.v2 else \
            _read(ROOT / "memory" / rel / "memory.oom_control")
        m = re.search(r"^oom_kill (\d+)", text or "", re.M)
        return bool(m and int(m.group(1)) > 0)

    def kill_all(self) -> None:
        for d in self.dirs():
            for procs in d.rglob("cgroup.procs"):
                for pid in (_read(procs) or "").split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        for d in self.dirs():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()
