"""One cgroup per task: the CPU and memory a task was given, enforced, and what it used.

:meth:`TaskCgroup.create` makes ``/rpiaas/NAME@PID/TASK`` (the agent's name
and process: :func:`agent_key`) at the same path in every hierarchy, so that
one path names the task's cgroup everywhere: a container engine given it as
its cgroup parent (``podman --runtime runc --cgroup-manager cgroupfs run
--cgroup-parent PATH``) makes the container's cgroup below it
(``PATH/libpod-ID``, and its monitor's ``PATH/conmon``), and the container's
CPU time and memory then count against, and are counted in, the task's.

- **CPU**: a weight of ``cores`` processes (``cpu.shares``, ``cpu.weight``)
  against the machine's other work, and a CFS quota of ``cores`` CPUs,
  always (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` in v1,
  ``cpu.max`` in v2): the task's processes
  together get at most ``cores`` CPUs' worth of time each period, however
  many threads or processes they run.  A cpuset (``cpuset.cpus``) only where
  the caller gives CPU ids, that is where the node has that many CPUs free to
  give the task alone; a node whose CPUs are shared (the local testbed's
  agents share this machine's) gets the quota only.
- **Memory**: ``mem_mb`` MiB (``memory.limit_in_bytes``, and
  ``memory.memsw.limit_in_bytes`` where swap accounting is on, in v1;
  ``memory.max`` and ``memory.swap.max = 0`` in v2).  ``mem_mb`` None or 0:
  no memory limit.  Beyond the limit the kernel reclaims the task's page cache,
  then kills one of its processes: :meth:`TaskCgroup.oom_killed` says so
  (v1 counts the kill in the victim's own cgroup, which an engine removes with
  its container, so the task's OOM is also heard on an eventfd).
- **Use**: CPU seconds from ``cpuacct.usage`` (v1) or ``cpu.stat``'s
  ``usage_usec`` (v2); peak memory from ``memory.max_usage_in_bytes`` (v1) or
  ``memory.peak`` (v2, Linux 5.19 and later; before, the usage at the end).
  Both count every process of the task and its page cache.

cgroup v1 (the hierarchies mounted one per controller or co-mounted, as on
Raspberry Pi OS up to bullseye and this project's CI machine) is tested.
cgroup v2 (one unified hierarchy, Raspberry Pi OS bookworm, Debian 12) is
written to the kernel's documentation and tested on a fake tree only: no v2
host was at hand.  On v2 the agent enables ``+cpu +memory +cpuset`` in
``cgroup.subtree_control`` from the root down to its own directory (systemd
leaves ``/sys/fs/cgroup/rpiaas``, which no unit owns, alone).  v2 allows no
process in a cgroup whose controllers are handed down: a container engine
given a task's path as its parent needs the task's own processes elsewhere,
which is not done.

Where cgroups cannot be used (not root, nothing mounted, a controller
missing) :meth:`TaskCgroup.create` returns None and :func:`unavailable` says
why: the task then runs without limits.

An agent killed with SIGKILL leaves its task cgroups behind (its workers kill
what is in them: :mod:`rpiaas_agent.workload`); :func:`remove_stale`, when an
agent of the same name starts, kills what is left in those of agents whose
process is gone and removes them.  The files themselves are read and written
by :mod:`rpiaas_agent.cgroupfs`.  This module uses the standard library only
(the agent runs on Python 3.9).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time

from . import cgroupfs as fs
from .cgroupfs import KILL_WAIT_S, V2_CONTROLLERS, Layout, detect, unavailable

__all__ = ["PERIOD_US", "ROOT", "Layout", "TaskCgroup", "agent_key", "detect", "remove_own", "remove_stale",
           "unavailable"]

ROOT = "rpiaas"  # the agent's tasks live under /ROOT/AGENT/TASK in each hierarchy
PERIOD_US = 100_000  # the CFS period: the quota is cores x this
MIN_QUOTA_US = 1_000  # the kernel's least
# a process's CPU weight (v1 cpu.shares, v2 cpu.weight), and the most the kernel takes
SHARES_PER_CPU, WEIGHT_PER_CPU = 1024, 100
MAX_WEIGHT = {"cpu.shares": 262_144, "cpu.weight": 10_000}
MB = 1 << 20
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def agent_key(name: str, pid: int | None = None) -> str:
    """The directory of one agent's tasks, ``NAME@PID``: unique among the agents alive on one
    machine (the local testbed runs several, with names another testbed may share), and
    stale once that process is gone (:func:`remove_stale`).  ``pid``: default this process."""
    return f"{_safe(name)}@{os.getpid() if pid is None else pid}"


def _safe(name: str) -> str:
    out = _SAFE.sub("_", name)[:200]
    return out if out.strip(".") else "_"


class TaskCgroup:
    """The cgroup of one task (see the module): made by :meth:`create`."""

    def __init__(self, layout: Layout, rel: str, cores: float, mem_mb: float | None,
                 cpus: list[int] | None) -> None:
        self.layout = layout
        self.rel = rel  # "/rpiaas/NAME@PID/TASK": the same in every hierarchy
        self.cores = cores
        self.mem_mb = mem_mb if mem_mb else None
        self.cpus = list(cpus) if cpus else None
        # v1 counts an OOM kill in the victim's cgroup only, which a container engine removes
        # with the container: an eventfd on memory.oom_control hears the task's limit reached
        self.oom_fd: int | None = None
        self.oom_heard = False

    # ------------------------------------------------------------ making
    @classmethod
    def create(cls, agent_name: str, task_id: str, cores: float, mem_mb: float | None,
               cpus: list[int] | None, layout: Layout | str | None = None,
               pid: int | None = None) -> TaskCgroup | None:
        """The cgroup ``/rpiaas/NAME@PID/TASK`` of task ``task_id`` of the agent named
        ``agent_name`` (the node's name; ``pid`` the agent's, default this process: see
        :func:`agent_key`), limited to ``cores`` CPUs of time, ``mem_mb`` MiB (None or 0:
        unlimited) and, where given, CPUs ``cpus``; None where cgroups cannot be used
        (:func:`unavailable` says why).  ``layout``: the hierarchies (default: this machine's,
        :func:`detect`).  OSError if the kernel refuses (nothing is left made)."""
        found = detect() if layout is None else layout
        if isinstance(found, str) or (layout is None and unavailable(found)):
            return None
        parts = [ROOT, agent_key(agent_name, pid), _safe(task_id)]
        self = cls(found, "/" + "/".join(parts), cores, mem_mb, cpus)
        try:
            if found.version == 1:
                self._make_v1(parts)
            else:
                self._make_v2(parts)
        except OSError:
            self.remove()
            raise
        return self

    def _make_v1(self, parts: list[str]) -> None:
        for ctrl, root in self.layout.dirs.items():
            if ctrl == "cpuset":
                fs.mkdirs_v1_cpuset(root, parts)
            else:
                os.makedirs(os.path.join(root, *parts), exist_ok=True)
        cpu = self.dir("cpu")
        self._weigh(cpu, "cpu.shares", SHARES_PER_CPU)
        fs.write(os.path.join(cpu, "cpu.cfs_period_us"), str(PERIOD_US))
        fs.write(os.path.join(cpu, "cpu.cfs_quota_us"), str(self.quota_us()))
        if self.cpus:
            fs.write(os.path.join(self.dir("cpuset"), "cpuset.cpus"), ",".join(map(str, self.cpus)))
        if self.mem_mb:
            limit = str(int(self.mem_mb * MB))
            memory = self.dir("memory")
            fs.write(os.path.join(memory, "memory.limit_in_bytes"), limit)
            memsw = os.path.join(memory, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):  # swap accounting on: no way round the limit through swap
                fs.write(memsw, limit)
            self._watch_oom(memory)

    def _watch_oom(self, memory: str) -> None:
        control = os.path.join(memory, "cgroup.event_control")
        if not os.path.exists(control):
            return
        efd = fs.eventfd()
        ofd = os.open(os.path.join(memory, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fs.write(control, f"{efd} {ofd}")
        except OSError:
            os.close(efd)
            raise
        finally:
            os.close(ofd)  # the kernel holds what it needs of it
        self.oom_fd = efd

    def _make_v2(self, parts: list[str]) -> None:
        path = self.layout.dirs["cpu"]
        for part in parts:  # controllers enabled for the children of each level down
            for ctrl in V2_CONTROLLERS:
                with contextlib.suppress(OSError):  # cpuset may be absent: the quota still holds
                    fs.write(os.path.join(path, "cgroup.subtree_control"), f"+{ctrl}")
            path = os.path.join(path, part)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
        self._weigh(path, "cpu.weight", WEIGHT_PER_CPU)
        fs.write(os.path.join(path, "cpu.max"), f"{self.quota_us()} {PERIOD_US}")
        if self.cpus:
            fs.write(os.path.join(path, "cpuset.cpus"), ",".join(map(str, self.cpus)))
        if self.mem_mb:
            fs.write(os.path.join(path, "memory.max"), str(int(self.mem_mb * MB)))
            swap = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap):
                fs.write(swap, "0")

    def _weigh(self, task_dir: str, name: str, per_cpu: int) -> None:
        """The CPU weight of the task, ``cores`` processes' worth, and of the agent's and
        ``ROOT``'s directories above it, the machine's CPUs' worth.

        Without it, CFS would weigh all of ``ROOT`` against one busy process elsewhere, as
        one process: on a loaded machine every task together would get one process's share.
        """
        cpus = os.cpu_count() or 1
        agent_dir = os.path.dirname(task_dir)
        for path, weight in ((os.path.dirname(agent_dir), per_cpu * cpus), (agent_dir, per_cpu * cpus),
                             (task_dir, max(2, round(per_cpu * self.cores)))):
            fs.write(os.path.join(path, name), str(min(weight, MAX_WEIGHT[name])))

    def quota_us(self) -> int:
        """The CFS quota per :data:`PERIOD_US`: ``cores`` CPUs' worth."""
        return max(MIN_QUOTA_US, round(self.cores * PERIOD_US))

    # ------------------------------------------------------------ using
    def dir(self, controller: str) -> str:
        """The task's directory in ``controller``'s hierarchy (v2: the one directory)."""
        return self.layout.dirs[controller] + self.rel

    def path(self, controller: str = "memory") -> str:
        """The task's cgroup path inside ``controller``'s hierarchy: ``/rpiaas/AGENT/TASK``,
        the same in every hierarchy.  Give it to ``podman run --cgroup-manager cgroupfs
        --cgroup-parent`` (runc then makes the container's cgroup below it)."""
        if controller not in self.layout.dirs:
            raise KeyError(f"no {controller} hierarchy (have {', '.join(self.layout.dirs)})")
        return self.rel

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join the task."""
        return [os.path.join(d + self.rel, "cgroup.procs") for d in self.layout.unique_dirs()]

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the task's cgroup (in every hierarchy); the processes it
        starts afterwards are born in it."""
        for procs in self.procs_files():
            fs.write(procs, str(pid))

    def usage(self) -> tuple[float, float]:
        """``(cpu_s, peak_mem_mb)`` of the task so far: the CPU time of all its processes, and
        the peak of their memory, page cache included (v2 before Linux 5.19: the usage now)."""
        if self.layout.version == 1:
            ns = fs.number(fs.read(os.path.join(self.dir("cpuacct"), "cpuacct.usage"))) or 0
            peak = fs.number(fs.read(os.path.join(self.dir("memory"), "memory.max_usage_in_bytes"))) or 0
            return ns / 1e9, peak / MB
        path = self.dir("cpu")
        us = fs.keyed(fs.read(os.path.join(path, "cpu.stat")), "usage_usec") or 0
        peak_text = fs.read(os.path.join(path, "memory.peak")) or fs.read(os.path.join(path, "memory.current"))
        return us / 1e6, (fs.number(peak_text) or 0) / MB

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the task (or of a container in it) for
        going over the memory limit."""
        if self.layout.version == 1:  # v1 counts a kill in the victim's own cgroup only
            if self.oom_fd is not None and not self.oom_heard:
                with contextlib.suppress(OSError):  # BlockingIOError: nothing heard yet
                    self.oom_heard = int.from_bytes(os.read(self.oom_fd, 8), "little") > 0
            if self.oom_heard:
                return True
            return any((fs.keyed(fs.read(os.path.join(d, "memory.oom_control")), "oom_kill") or 0) > 0
                       for d in fs.tree(self.dir("memory")))
        # v2's memory.events counts the whole subtree
        return (fs.keyed(fs.read(os.path.join(self.dir("memory"), "memory.events")), "oom_kill") or 0) > 0

    def pids(self) -> list[int]:
        """The processes in the task's cgroup and below."""
        return fs.pids(self.dir("memory"))

    # ------------------------------------------------------------ ending
    def kill_all(self, wait_s: float = KILL_WAIT_S) -> bool:
        """SIGKILL every process in the task's cgroup and below, again until none is left or
        ``wait_s`` has passed (0: one round, for a caller that must not block); whether none is."""
        return fs.kill_tree(self.dir("memory"), wait_s)

    def remove(self) -> bool:
        """Remove the cgroup (and any below it, a container's) from every hierarchy, killing
        what is still in it first; whether all of it went."""
        if self.pids():
            self.kill_all()
        if self.oom_fd is not None:
            self.oom_killed()  # read (and keep) what it heard before it goes
            os.close(self.oom_fd)
            self.oom_fd = None
        ok = True
        for d in self.layout.all_dirs():
            for _ in range(50):  # a process just killed leaves its cgroup a moment later
                if fs.rmdir_tree(d + self.rel):
                    break
                time.sleep(0.02)
            else:
                ok = False
        return ok


def remove_stale(agent_name: str, layout: Layout | str | None = None) -> list[str]:
    """Kill and remove the task cgroups that agents named ``agent_name`` left when they died
    (killed with SIGKILL, they could not): every ``/rpiaas/NAME@PID`` but this process's
    whose process is gone, and the ``TASK`` cgroups in it.  ``["NAME@PID/TASK", ...]``
    removed.  Call it when the agent starts, before it starts any task."""
    found = detect() if layout is None else layout
    if isinstance(found, str):
        return []
    prefix, own = f"{_safe(agent_name)}@", agent_key(agent_name)
    removed: set[str] = set()
    for root in found.all_dirs():
        base = os.path.join(root, ROOT)
        try:
            agents = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)
                      and e.name.startswith(prefix) and e.name[len(prefix):].isdigit()]
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
            continue
        for agent in agents:
            if agent.name == own or fs.alive(int(agent.name[len(prefix):])):
                continue  # a live agent of the same name (another testbed's)
            for entry in os.scandir(agent.path):
                if entry.is_dir(follow_symlinks=False):
                    fs.kill_tree(entry.path)
                    for _ in range(50):
                        if fs.rmdir_tree(entry.path):
                            break
                        time.sleep(0.02)
                    removed.add(f"{agent.name}/{entry.name}")
            with contextlib.suppress(OSError):
                os.rmdir(agent.path)
    return sorted(removed)


def remove_own(agent_name: str, layout: Layout | str | None = None) -> bool:
    """Remove this agent's own directory when it stops, after its last task ended (killing
    whatever is still in it); whether all of it went."""
    found = detect() if layout is None else layout
    if isinstance(found, str):
        return True
    ok = True
    for root in found.all_dirs():
        path = os.path.join(root, ROOT, agent_key(agent_name))
        if os.path.isdir(path):
            fs.kill_tree(path)
            ok = fs.rmdir_tree(path) and ok
    return ok
