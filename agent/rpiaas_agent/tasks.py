"""Workloads: the tasks the agent runs for the master (``/tasks``), within the node's capacity.

:class:`TaskManager` admits a task when the node has the cores and memory
free (the sum over running tasks plus the request is at most ``cores`` and
``mem_mb``), pins it to CPU ids of ``cpu_set`` of its own, and starts its
worker (:mod:`rpiaas_agent.workload`) as a process group of its own.  The
caller names the task: the id is the master's, so a retried request cannot
start a task twice.

A thread per running task waits for its worker with ``waitid(WNOWAIT)``:
when the worker has exited but is not yet reaped, its pid cannot be reused,
so the thread can kill whatever the task left in its group and then reap it
with ``wait4``, which gives the exit status, the CPU time and the peak RSS of
the worker and the children it waited for.  Signals to a group go under the
same lock, so the agent never signals a reaped pid.

Every process task runs in a cgroup of its own (:mod:`rpiaas_agent.cgroups`):
a CPU quota of its ``cores``, a cpuset where the task has CPUs of its own (not
on an ``oversubscribe`` node, whose CPUs its tasks share: the local testbed's),
and a memory limit of its ``mem_mb`` plus :data:`WORKER_MB` for the worker's
own interpreter (``mem_mb`` 0: none).  Its ``cpu_s`` and ``peak_mem_mb`` are
the cgroup's, and a kill by the memory limit ends it ``failed`` with reason
``oom``.  Where cgroups cannot be used the task runs without limits, its
document saying ``limits: "none"`` and why; its ``cpu_s`` is then the rusage
of ``wait4`` and its ``peak_mem_mb`` the worker's report (below).

Workers are started from the event loop's thread on purpose: Linux sends the
death signal when the *thread* that started a process ends, and that thread
lives as long as the agent.

A ``container`` task is no worker: a thread pulls its image if the node lacks
it (timed: ``pull_s``), then runs it with the node's container engine in a
control group of its own (:mod:`rpiaas_agent.containers`,
:mod:`rpiaas_agent.cgroups`); its CPU time and peak memory are the group's,
and its output is kept, cut at ``OUTPUT_MAX_BYTES``, in the work directory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Callable

import psutil
from aiohttp import web

from . import workload
from .cgroups import Layout, TaskCgroup, agent_key, detect, remove_own, remove_stale, unavailable
from .config import Config
from .containers import (
    AGENT_LABEL,
    OUTPUT_MAX_BYTES,
    ContainerError,
    Engine,
    OomWatch,
    container_name,
    detect_engine,
    start_reaper,
)
from .images import image_reference, plain_http
from .taskspec import BadTaskRequest, TaskSpec, parse_task_request

__all__ = ["KILL_GRACE_S", "Task", "TaskManager", "TaskRefused"]

log = logging.getLogger(__name__)

WORKER = str(Path(workload.__file__).resolve())
KILL_GRACE_S = 2.0  # SIGTERM to SIGKILL
# the worker's interpreter, resident beside what the task itself holds (about 10 MiB of
# CPython, and each cpu child's copied pages): a memory task of mem_mb must fit its limit
WORKER_MB = 24
CALIBRATION_S = 0.3
MB = workload.MB
_measured: list[float] = []  # the kernel's rate, measured once per process

Notify = Callable[[str, dict[str, Any]], None]


class TaskRefused(Exception):
    """A request the agent does not carry out: the HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Task:
    """One task: its request, its process, and how it ended."""

    def __init__(self, spec: TaskSpec, cpu_ids: tuple[int, ...]) -> None:
        self.spec = spec
        self.cpu_ids = cpu_ids
        self.state = "running"
        self.pid: int | None = None
        self.submitted_s = time.time()
        self.started_s: float | None = None
        self.start_mono = 0.0
        self.ended_s: float | None = None
        self.exit_status: int | None = None
        self.cpu_s: float | None = None
        self.peak_rss_mb: float | None = None
        self.error: str | None = None
        self.kill_reason: str | None = None
        self.io_file: str | None = None
        self.own_cpus = False  # cpu_ids are the task's alone: it gets them as a cpuset
        self.cgroup: TaskCgroup | None = None
        self.limits: dict[str, Any] | str = "none"
        self.limits_note = ""
        self.reason: str | None = None  # "oom": killed by its memory limit
        self.peak_mem_mb: float | None = None
        self.used: tuple[float, float, bool] | None = None  # the cgroup's cpu_s, peak MiB, oom
        self.pull_s: float | None = None  # a container task's image pull (0: the node had it)
        self.output_file: str | None = None  # a container task's output, bounded
        self.container: str | None = None  # its container's name
        self.ended = asyncio.Event()
        self.lock = threading.Lock()  # held to signal the group, and to reap the worker
        self.reaped = False

    def document(self) -> dict[str, Any]:
        """The task as ``GET /tasks/{id}`` answers it."""
        s = self.spec
        return {"id": s.id, "kind": s.kind, "state": self.state, "cores": s.cores,
                "mem_mb": s.mem_mb, "cpu_ids": list(self.cpu_ids), "pid": self.pid,
                "submitted_s": round(self.submitted_s, 6),
                "started_s": None if self.started_s is None else round(self.started_s, 6),
                "ended_s": self.ended_s, "exit_status": self.exit_status, "cpu_s": self.cpu_s,
                "peak_rss_mb": self.peak_rss_mb, "peak_mem_mb": self.peak_mem_mb,
                "limits": self.limits, "limits_note": self.limits_note, "reason": self.reason,
                "error": self.error, "pull_s": self.pull_s, "output_file": self.output_file}


def node_cpu_set(config: Config) -> tuple[int, ...]:
    """The CPU ids tasks may use: ``cpu_set``, else those this process may run on."""
    if config.cpu_set:
        return tuple(config.cpu_set)
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(psutil.cpu_count() or 1))


def node_mem_mb() -> int:
    return int(psutil.virtual_memory().total // MB)


def _task_env() -> dict[str, str]:
    # the agent's own settings stay with the agent: RPIAAS_AGENT_TOKEN above all
    return {k: v for k, v in os.environ.items() if not k.startswith("RPIAAS_AGENT_")}


def _describe(code: int) -> str:
    sig = -code if code < 0 else code - workload.EXIT_SIGNAL if code > workload.EXIT_SIGNAL else 0
    if sig:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(sig).name}"
    if code == workload.EXIT_CANNOT_RUN:
        return "the command cannot be run (exit status 127)"
    return f"exit status {code}"


def _keep_output(pipe: Any, path: str) -> None:
    """Copy ``pipe`` to ``path`` until its end, the first ``OUTPUT_MAX_BYTES`` only (the rest is
    read and dropped, so the writer never blocks)."""
    kept = dropped = 0
    with pipe, open(path, "wb") as out:
        while chunk := pipe.read1(65536):
            room = OUTPUT_MAX_BYTES - kept
            out.write(chunk[:room])
            kept += min(room, len(chunk))
            dropped += max(0, len(chunk) - room)
        if dropped:
            out.write(f"\n[rpiaas-agent: {dropped} more bytes of output dropped]\n".encode())


def _read_report(proc: subprocess.Popen[bytes]) -> tuple[int | None, float | None]:
    """The peak RSS in KiB and the monotonic time its work ended that the reaped worker
    wrote on its stdout, if it could.

    Not ``ru_maxrss`` of ``wait4``: Linux carries the peak RSS over fork and exec,
    so it would be at least the agent's own (see :mod:`rpiaas_agent.workload`).
    A worker killed by SIGKILL says nothing: then ``None`` for both.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)  # the group is gone, but never hang on a stray holder of the pipe
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        data = b""
    finally:
        proc.stdout.close()
    for line in reversed(data.splitlines()):
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
            report = json.loads(line)
            peak, done = report["peak_rss_kib"], report.get("done_mono")
            if isinstance(peak, int) and peak >= 0:
                return peak, float(done) if isinstance(done, (int, float)) else None
    return None, None


class TaskManager:
    """The node's tasks: admission, start, end, kill; ``notify(url, document)`` on each end."""

    runner = "process"  # what a task is here (/info's tasks.runner): a process group
    uses_cgroups = True  # its tasks get cgroups (see the module)

    def __init__(self, config: Config, notify: Notify | None = None) -> None:
        self.config = config
        self.cpu_set = node_cpu_set(config)
        self.cores = config.cores or len(self.cpu_set)
        self.mem_mb: float = config.mem_mb or node_mem_mb()
        self.notify = notify
        self.kernel_ops_per_s: float | None = _measured[0] if _measured else None
        # CPU seconds (rusage) of every task that ended since the agent started: a counter
        # that never goes down, whatever max_finished_tasks forgets
        self.ended_cpu_s = 0.0
        self.agent_name = config.node_name  # its tasks' cgroups: rpiaas/NAME@PID/TASK
        self.no_cgroups = unavailable()  # why tasks run without limits here ("" if they do not)
        self._running: dict[str, Task] = {}
        self._finished: collections.OrderedDict[str, Task] = collections.OrderedDict()
        program = detect_engine(config.container_engine)
        # the key labels this agent's containers: its node's name and port (one agent per both)
        self.engine = None if program is None else \
            Engine(program, config.container_runtime, f"{config.node_name}-{config.port}")
        self._reaper: tuple[subprocess.Popen[bytes], int] | None = None
        self._sweep_lock = threading.Lock()  # held while an earlier agent's leftovers are removed
        self._swept = False

    # ------------------------------------------------------------ reading
    def get(self, task_id: str) -> Task | None:
        return self._running.get(task_id) or self._finished.get(task_id)

    def tasks(self) -> list[Task]:
        """Running tasks in the order they started, then finished ones, latest end first."""
        return [*self._running.values(), *reversed(self._finished.values())]

    def usage(self) -> dict[str, Any]:
        """``/info``'s ``tasks``: what runs, what it holds, and the node's capacity."""
        running = list(self._running.values())
        return {"running": len(running), "cores_used": sum(t.spec.cores for t in running),
                "mem_mb_used": sum(t.spec.mem_mb for t in running), "cores": self.cores,
                "mem_mb": self.mem_mb, "runner": self.runner, "limits": self.limits()}

    def limits(self) -> str:
        """``/info``'s ``tasks.limits``: what holds tasks to their limits here, or why nothing."""
        if not self.uses_cgroups:
            return "none: a timer has no process"
        if self.no_cgroups:
            return f"none: {self.no_cgroups}"
        layout = detect()
        return f"cgroup v{layout.version}" if isinstance(layout, Layout) else f"none: {layout}"

    def speed(self) -> dict[str, float | None]:
        """``/info``'s ``speed``: the kernel's single-core rate here, and over the reference's."""
        rate = self.kernel_ops_per_s
        return {"kernel_ops_per_s": None if rate is None else round(rate, 1),
                "relative": None if rate is None else
                round(rate / workload.REFERENCE_OPS_PER_S, 4)}

    # ------------------------------------------------------------ starting
    def submit(self, body: Any) -> Task:
        """Start the task that ``body`` asks for, or raise :class:`TaskRefused` having started nothing."""
        try:
            spec = parse_task_request(body, self.cores, self.mem_mb)
        except BadTaskRequest as e:
            raise TaskRefused(400, str(e)) from None
        if spec.kind == "command" and not self.config.allow_commands:
            raise TaskRefused(403, "command tasks are off on this agent "
                                   "(allow_commands = false; see --allow-commands)")
        old = self.get(spec.id)
        if old is not None:
            raise TaskRefused(409, f"id: a task {spec.id!r} exists already ({old.state})")
        used = self.usage()
        free_cores = self.cores - used["cores_used"]
        free_mb = self.mem_mb - used["mem_mb_used"]
        if spec.cores > free_cores or spec.mem_mb > free_mb:
            raise TaskRefused(409, f"not enough free: the task needs {spec.cores} cores and "
                                   f"{spec.mem_mb:g} mem_mb; free now: {free_cores} of "
                                   f"{self.cores} cores, {free_mb:g} of {self.mem_mb:g} mem_mb")
        if spec.io_mb is not None:
            free_disk = shutil.disk_usage(self.config.work_dir).free / MB
            if spec.io_mb > free_disk:
                raise TaskRefused(409, f"io_mb: {spec.io_mb:g} is more than the {free_disk:.0f} "
                                       f"MB free in work_dir {self.config.work_dir}")
        busy = {c for t in self._running.values() for c in t.cpu_ids}
        free = [c for c in self.cpu_set if c not in busy]
        # an oversubscribed node (more cores than CPUs, or CPUs other agents use too) lets a
        # task share every CPU, within its quota
        own = len(free) >= spec.cores and not self.config.oversubscribe
        task = Task(spec, tuple(free[:spec.cores] if own else self.cpu_set))
        task.own_cpus = own
        self._start(task)
        self._running[spec.id] = task
        log.info("task %s (%s) started: pid %s, CPUs %s", spec.id, spec.kind, task.pid,
                 ",".join(map(str, task.cpu_ids)))
        return task

    def _limit(self, task: Task, allowance_mb: float = WORKER_MB) -> None:
        """Make the task's cgroup, or say in its document why it has none; its memory limit is
        ``mem_mb`` plus ``allowance_mb`` for the worker (a container task's: none)."""
        s = task.spec
        if self.no_cgroups:
            task.limits_note = f"no limits: {self.no_cgroups}"
            return
        mem_mb = s.mem_mb + allowance_mb if s.mem_mb else None
        cpus = list(task.cpu_ids) if task.own_cpus else None
        try:
            task.cgroup = TaskCgroup.create(self.agent_name, s.id, s.cores, mem_mb, cpus)
        except OSError as e:
            log.warning("task %s: runs without limits: cannot make its cgroup: %s", s.id, e)
            task.limits_note = f"no limits: cannot make its cgroup: {e.strerror or e}"
            return
        if task.cgroup is None:
            task.limits_note = "no limits: cgroups cannot be used here"
            return
        layout = task.cgroup.layout
        task.limits = {"cgroup": f"v{layout.version}", "path": task.cgroup.path(),
                       "cpu_quota_cores": s.cores, "cpus": cpus, "mem_limit_mb": mem_mb}
        notes = [] if cpus else ["no cpuset: the node's CPUs are shared, the quota holds"]
        if not mem_mb:
            notes.append("no memory limit: mem_mb is 0")
        elif allowance_mb:
            notes.append(f"memory limit: mem_mb + {allowance_mb:g} MiB for the worker")
        else:
            notes.append("memory limit: mem_mb, on the task's cgroup and its container's")

        task.limits_note = "; ".join(notes)

    def _command(self, task: Task) -> list[str]:
        s = task.spec
        cmd = [sys.executable, "-I", WORKER, s.kind, "--parent-pid", str(os.getpid()),
               "--cpu-ids", ",".join(map(str, task.cpu_ids)), "--start", repr(task.start_mono)]
        for procs in task.cgroup.procs_files() if task.cgroup else ():
            cmd += ["--join", procs]
        for flag, value in (("--work-core-s", s.work_core_s), ("--duration-s", s.duration_s),
                            ("--mem-mb", s.mem_mb if s.kind == "memory" else None),
                            ("--io-mb", s.io_mb), ("--io-file", task.io_file)):
            if value is not None:
                cmd += [flag, repr(value) if isinstance(value, float) else str(value)]
        if s.argv is not None:
            cmd += ["--", *s.argv]
        return cmd

    def _start(self, task: Task) -> None:
        if task.spec.kind == "container":
            if self.engine is None:
                raise TaskRefused(403, "container tasks are off on this agent: no container engine "
                                       f"(container_engine = {self.config.container_engine!r}; podman "
                                       "or docker not found)")
            if self._reaper is None:  # started with the first container, so other agents spawn nothing
                try:
                    self._reaper = start_reaper(self.engine)
                except OSError as e:
                    raise TaskRefused(503, f"cannot start the watcher of this agent's containers: {e}") from None
            task.output_file = os.path.join(self.config.work_dir, f"rpiaas-task-{task.spec.id}.out")
            task.container = container_name(self.engine.agent_key, task.spec.id)
            self._limit(task, allowance_mb=0)  # the container's cgroup is made below it
            threading.Thread(target=self._contain, args=(task, asyncio.get_running_loop()), daemon=True,
                             name=f"task-{task.spec.id}").start()
            return
        if task.spec.kind == "io":
            task.io_file = os.path.join(self.config.work_dir, f"rpiaas-task-{task.spec.id}.io")
        self._limit(task)
        task.start_mono = time.monotonic()
        try:
            proc = subprocess.Popen(self._command(task), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, cwd=self.config.work_dir,
                                    env={**_task_env(), **dict(task.spec.env)},
                                    start_new_session=True)
        except OSError as e:
            if task.cgroup is not None:
                task.cgroup.remove()
            raise TaskRefused(503, f"cannot start the task: {e}") from None
        task.started_s = time.time() - (time.monotonic() - task.start_mono)
        task.pid = proc.pid
        if task.cgroup is not None:  # now, so its start-up memory counts; it joins itself too
            with contextlib.suppress(OSError):
                task.cgroup.add(proc.pid)
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._wait, args=(task, proc, loop), daemon=True,
                         name=f"task-{task.spec.id}").start()

    # ------------------------------------------------------------ ending
    def _wait(self, task: Task, proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop
              ) -> None:
        """In a thread: wait for the worker, sweep its group, reap it, report to the loop."""
        pid = proc.pid
        try:
            if hasattr(os, "waitid"):
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            with task.lock:
                if hasattr(os, "waitid"):  # still a zombie: the group id is still ours
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                task.reaped = True
        except ChildProcessError:  # reaped by someone else: no status, no usage
            log.error("task %s: its worker %d was reaped elsewhere", task.spec.id, pid)
            with task.lock:
                task.reaped = True
            status, usage = 255 << 8, resource.struct_rusage((0.0,) * 16)
        ended = time.monotonic()
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits for it again
        cgroup = task.cgroup
        if cgroup is not None:  # what left the group (setsid) is still in the cgroup
            cgroup.kill_all()
            cpu_s, peak_mb = cgroup.usage()
            task.used = (cpu_s, peak_mb, cgroup.oom_killed())
            if not cgroup.remove():
                log.warning("task %s: cannot remove its cgroup %s", task.spec.id, cgroup.path())
        peak_kib, done = _read_report(proc)
        if done is not None and task.start_mono <= done <= ended:
            ended = done  # the work's own end: not the worker's exit and reaping after it
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is exiting
            loop.call_soon_threadsafe(self._ended, task, proc.returncode, usage, peak_kib, ended)

    def _contain(self, task: Task, loop: asyncio.AbstractEventLoop) -> None:
        """In a thread: a container task from its image's pull to its container's removal."""
        s, engine, name = task.spec, self.engine, task.container
        assert engine is not None and name is not None and s.image is not None
        code: int | None = None  # None: the container never ran
        cpu_s, peak_mb, why = None, None, None
        with self._sweep_lock:  # before our first container: none of ours is removed as a leftover
            if not self._swept:
                self._sweep(engine)
                self._swept = True
        # from the testbed's registry, unless the image names its own
        image = image_reference(s.image, self.config.registry)
        # the task starts when it is taken, its pull included (as the simulation has it: the
        # task holds its cores and memory from then on, and ended_s - started_s is pull + run)
        task.start_mono = time.monotonic()
        try:
            task.pull_s = 0.0 if engine.has_image(image) else \
                round(engine.pull(image, tls_verify=not plain_http(image, self.config.registry)), 6)
        except ContainerError as e:
            why = str(e)
        group = task.cgroup  # made with the task (see _start): the container's parent
        used: tuple[float, float, bool] | None = None
        with task.lock:  # a kill during the pull: nothing is run
            run = why is None and task.kill_reason is None
            if run:
                cmd = engine.run_command(
                    name=name, task_id=s.id, image=image, argv=s.argv, env=s.env, cores=s.cores,
                    cpuset=task.cpu_ids if task.own_cpus else None, mem_mb=s.mem_mb, network=s.network,
                    cgroup_parent=None if group is None else group.path("memory"))
                try:
                    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, cwd=self.config.work_dir,
                                            env={**_task_env(), **dict(s.env)}, start_new_session=True)
                except OSError as e:
                    run, why = False, f"cannot start {engine.name}: {e}"
                else:
                    task.pid = proc.pid
        # v1: the container's own memory cgroup, below the task's, hears its OOM kill
        watch = OomWatch(group.dir("memory")) if run and group is not None and group.layout.version == 1 else None
        task.started_s = time.time() - (time.monotonic() - task.start_mono)
        ended = time.monotonic()  # (a container that never ran ends now: its pull took the time)
        oom = False
        if run:
            assert proc.stdout is not None and task.output_file is not None
            _keep_output(proc.stdout, task.output_file)
            proc.wait()
            ended = time.monotonic()
            with task.lock:
                task.reaped = True
            state = engine.ended(name)
            code = proc.returncode if state is None else state.exit_status
            try:
                engine.remove(name)
            except ContainerError as e:
                log.warning("task %s: %s", s.id, e)
            oom = state is not None and state.oom_killed
            if watch is not None:
                oom = watch.done() or oom
            if why is None and code in (125, 126, 127) and state is None:
                why = f"{engine.name} could not run the container (its exit status {code})"
                code = None
        if group is not None:  # the container's processes counted in the task's cgroup
            group.kill_all()
            cpu_s, peak_mb = group.usage()
            used = (cpu_s, peak_mb, oom or group.oom_killed())
            if not group.remove():
                log.warning("task %s: cannot remove its cgroup %s", s.id, group.path())
        elif oom:
            used = (0.0, 0.0, True)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is exiting
            loop.call_soon_threadsafe(self._container_ended, task, code, used, ended, why)

    def _ended(self, task: Task, code: int, usage: Any, peak_kib: int | None,
               ended_mono: float) -> None:
        assert task.started_s is not None
        task.ended_s = round(task.started_s + (ended_mono - task.start_mono), 6)
        task.exit_status = code
        # not usage.ru_maxrss: see _read_report
        task.peak_rss_mb = None if peak_kib is None else round(peak_kib / 1024, 3)
        if task.used is not None:  # the cgroup's: every process of the task
            cpu_s, peak_mb, oom = task.used
            task.peak_mem_mb = round(peak_mb, 3)
        else:
            cpu_s, oom = usage.ru_utime + usage.ru_stime, False
            task.peak_mem_mb = task.peak_rss_mb
        task.cpu_s = round(cpu_s, 3)
        self.ended_cpu_s += cpu_s
        self._settle(task, code, oom, None, f"{task.spec.mem_mb:g} + {WORKER_MB} MiB for the worker")

    def _container_ended(self, task: Task, code: int | None, used: tuple[float, float, bool] | None,
                         ended_mono: float, why: str | None) -> None:
        """A container task's end: ``used`` is its cgroup's CPU seconds, peak MiB and OOM kill
        (None: it had no cgroup); ``why`` says why it never ran, if it did not (``code`` None)."""
        assert task.started_s is not None
        task.ended_s = round(task.started_s + (ended_mono - task.start_mono), 6)
        task.exit_status = code
        oom = False
        if used is not None:
            cpu_s, peak_mb, oom = used
            task.cpu_s, task.peak_mem_mb = round(cpu_s, 3), round(peak_mb, 3)
            task.peak_rss_mb = task.peak_mem_mb  # (no single process of its own to tell apart)
            self.ended_cpu_s += cpu_s
        self._settle(task, code, oom, why, f"{task.spec.mem_mb:g}")

    def _settle(self, task: Task, code: int | None, oom: bool, why: str | None, limit: str) -> None:
        """The end of any task: its state and why, then the books, the log and the push."""
        if task.kill_reason is not None:
            task.state, task.error = "killed", task.kill_reason
        elif code == 0 and why is None:
            task.state = "completed"
        elif oom:
            task.state, task.reason = "failed", "oom"
            task.error = f"killed by its memory limit (oom): {_describe(code or 0)}, over mem_mb {limit}"
        else:
            task.state, task.error = "failed", why or _describe(code or 0)
        if task.io_file:
            with contextlib.suppress(OSError):
                os.unlink(task.io_file)
        self._running.pop(task.spec.id, None)
        self._finished[task.spec.id] = task
        while len(self._finished) > self.config.max_finished_tasks:
            _, old = self._finished.popitem(last=False)
            if old.output_file:  # forgotten with its task
                with contextlib.suppress(OSError):
                    os.unlink(old.output_file)
        task.ended.set()
        assert task.ended_s is not None and task.started_s is not None
        log.info("task %s %s after %.3f s (exit status %s%s, %s CPU s, peak memory %s MB)",
                 task.spec.id, task.state, task.ended_s - task.started_s, code,
                 f", {task.reason}" if task.reason else "", task.cpu_s, task.peak_mem_mb)
        if task.spec.notify_url and self.notify is not None:
            self.notify(task.spec.notify_url, task.document())

    def _signal(self, task: Task, sig: int) -> None:
        if task.container is not None and self.engine is not None:
            # the container's processes are the engine's, not in the group of its `run`
            threading.Thread(target=self._signal_container, args=(task.container, sig), daemon=True).start()
            return
        with task.lock:
            if not task.reaped and task.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(task.pid, sig)
                if sig == signal.SIGKILL and task.cgroup is not None:
                    task.cgroup.kill_all(wait_s=0)  # and what left the group; no wait in the loop

    def _signal_container(self, name: str, sig: int) -> None:
        assert self.engine is not None
        try:
            self.engine.signal(name, signal.Signals(sig).name[3:])
        except ContainerError as e:
            log.warning("%s", e)

    async def kill(self, task_id: str, reason: str = "killed on request") -> Task:
        """Kill a running task's whole group (SIGTERM, SIGKILL after a grace); the task as it ended."""
        task = self.get(task_id)
        if task is None:
            raise TaskRefused(404, f"no task {task_id!r}")
        if task.state != "running":
            return task
        if task.kill_reason is None:
            task.kill_reason = reason
        self._signal(task, signal.SIGTERM)
        try:
            await asyncio.wait_for(task.ended.wait(), KILL_GRACE_S)
        except asyncio.TimeoutError:
            self._signal(task, signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):  # a process stuck in the kernel
                await asyncio.wait_for(task.ended.wait(), 10.0)
        return task

    # ------------------------------------------------------------ life cycle
    async def _calibrate(self) -> None:
        if _measured:
            self.kernel_ops_per_s = _measured[0]
            return
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", WORKER, "calibrate", "--seconds", str(CALIBRATION_S),
            "--parent-pid", str(os.getpid()), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, env=_task_env(), start_new_session=True)
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        try:
            rate = float(out)
        except ValueError:
            log.warning("cannot measure the node's speed: the kernel run exited with %s",
                        proc.returncode)
            return
        _measured[:] = [rate]
        self.kernel_ops_per_s = rate
        log.info("speed: %.0f kernel steps/s on one core, %.3f x the reference", rate,
                 rate / workload.REFERENCE_OPS_PER_S)

    def remove_stale(self) -> None:
        """Remove the task cgroups that killed agents of this name left, and say whether tasks
        get limits."""
        if self.no_cgroups:
            log.warning("tasks run without limits: %s", self.no_cgroups)
            return
        try:
            stale = remove_stale(self.agent_name)
        except OSError as e:
            log.warning("cannot remove the task cgroups a previous agent left: %s", e)
            return
        if stale:
            log.info("removed the cgroups of %d task(s) a previous agent left: %s", len(stale),
                     ", ".join(stale))
        log.info("tasks run in cgroups (rpiaas/%s/TASK): CPU quota, memory limit",
                 agent_key(self.agent_name))

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: measure the speed in the background; at the end, kill every task."""
        log.info("tasks: up to %d cores (CPUs %s) and %g MB; command tasks %s; work_dir %s",
                 self.cores, ",".join(map(str, self.cpu_set)), self.mem_mb,
                 "allowed" if self.config.allow_commands else "off", self.config.work_dir)
        if self.uses_cgroups:
            self.remove_stale()
        calibration = asyncio.ensure_future(self._calibrate())
        yield
        calibration.cancel()
        await asyncio.gather(calibration, return_exceptions=True)
        await asyncio.gather(*(self.kill(i, "the agent stopped") for i in list(self._running)))
        if self.uses_cgroups and not self.no_cgroups:
            with contextlib.suppress(OSError):
                remove_own(self.agent_name)
        if self._reaper is not None:
            proc, pipe = self._reaper
            os.close(pipe)  # the watcher finds none of our containers left, and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30.0)

    def _sweep(self, engine: Engine) -> None:
        """Before the agent's first container: remove those an earlier agent of this key left (the
        watcher of :mod:`rpiaas_agent.containers` removes ours when this agent dies)."""
        try:
            left = engine.remove_ours()
        except ContainerError as e:
            log.warning("containers: %s", e)
            left = 0
        if left:
            log.warning("containers: removed %d left by an earlier agent of %s", left, engine.agent_key)
        log.info("containers: %s (runtime %s), labelled %s=%s", engine.program, engine.runtime or "default",
                 AGENT_LABEL, engine.agent_key)
