"""Container tasks: the node's container engine (podman, or docker with the same flags) runs a
task's image, held to the cores and memory it was given.

:class:`Engine` says how: it builds the ``run`` command (a CPU quota of the task's cores
always, a cpuset only where the node has that many CPUs free to give, memory and swap at
``mem_mb``, no network unless asked, the rlimits a sandbox that forbids raising them needs,
labels naming the agent and the task), checks whether an image is here, pulls it and times
the pull, reads how a container ended (its exit status, and whether the engine saw an OOM
kill), and removes containers.

No container outlives its agent: the agent holds the write end of a pipe whose read end is
the standard input of a small watcher process (``python -I containers.py reap ...``, in a
session of its own, so neither a signal to the agent's group nor the agent's SIGKILL reaches
it).  When the agent dies, however it dies, the kernel closes the pipe; the watcher reads
end-of-file and removes every container labelled with the agent's key.  At its start, the
agent removes the leftovers of an agent of the same key (an earlier run of the same node).

This file imports the standard library only, so the watcher starts in tens of milliseconds
and never loads the agent's dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGENT_LABEL",
    "OUTPUT_MAX_BYTES",
    "TASK_LABEL",
    "ContainerError",
    "Ended",
    "Engine",
    "OomWatch",
    "container_name",
    "detect_engine",
    "main",
    "start_reaper",
]

AGENT_LABEL = "org.rpiaas.agent"  # the agent's key: node name and port
TASK_LABEL = "org.rpiaas.task"  # the task's id
OUTPUT_MAX_BYTES = 1 << 20  # a task's output kept in its work directory; the rest is dropped
# This sandbox (and some CI runners) forbid raising resource limits, and an engine that copies
# its own high limits into the container fails with "setrlimit ...: Operation not permitted".
RLIMIT_FLAGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
ENGINES = ("podman", "docker")  # in the order they are looked for
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MB = 1 << 20


class ContainerError(Exception):
    """The engine could not do what it was asked: one line saying what."""


def detect_engine(configured: str) -> str | None:
    """The engine's program: ``configured`` (a name on PATH or a path), or podman, then docker,
    when it is empty; ``None`` when there is none or it is ``none``."""
    if configured == "none":
        return None
    for name in (configured,) if configured else ENGINES:
        found = shutil.which(name)
        if found:
            return found
    return None


def container_name(agent_key: str, task_id: str) -> str:
    """A name for the task's container, from the agent's key and the task's id."""
    return _UNSAFE.sub("_", f"rpiaas-{agent_key}-{task_id}")[:250]


@dataclass(frozen=True)
class Ended:
    """How a container ended, as its engine saw it."""

    exit_status: int
    oom_killed: bool


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class Engine:
    """An engine program, its OCI runtime (``runc``, ``crun``; empty: the engine's default) and
    the key of the agent whose containers it runs."""

    def __init__(self, program: str, runtime: str, agent_key: str) -> None:
        self.program = program
        self.runtime = runtime
        self.agent_key = agent_key
        self.name = os.path.basename(program)

    def _call(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.program, *args], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ContainerError(f"{self.name} {args[0]}: {e}") from None

    def run_command(self, *, name: str, task_id: str, image: str, argv: Sequence[str] | None,
                    env: Sequence[tuple[str, str]], cores: int, cpuset: Sequence[int] | None,
                    mem_mb: float, network: bool, cgroup_parent: str | None) -> list[str]:
        """The ``run`` command of a task's container (attached: its output on our pipes); the
        engine must be given ``env`` in its own environment (``--env NAME`` copies it)."""
        cmd = [self.program, "run", "--name", name, "--label", f"{AGENT_LABEL}={self.agent_key}",
               "--label", f"{TASK_LABEL}={task_id}", "--pull", "never", "--log-driver", "none",
               "--stop-timeout", "2", "--cpus", str(cores), *RLIMIT_FLAGS]
        if self.runtime:
            cmd += ["--runtime", self.runtime]
        if cpuset:
            cmd += ["--cpuset-cpus", ",".join(map(str, cpuset))]
        if mem_mb > 0:  # the engines' floor is 6 MiB
            limit = str(max(int(mem_mb * MB), 6 * MB))
            cmd += ["--memory", limit, "--memory-swap", limit]
        if not network:
            cmd += ["--network", "none"]
        if cgroup_parent:
            cmd += ["--cgroup-parent", cgroup_parent]
        for key, _ in env:  # the value from the engine's environment: never on a command line
            cmd += ["--env", key]
        cmd.append(image)
        if argv:
            cmd += list(argv)
        return cmd

    def has_image(self, image: str) -> bool:
        return self._call("image", "inspect", "--format", "{{.Id}}", image).returncode == 0

    def pull(self, image: str, *, tls_verify: bool = True) -> float:
        """Pull ``image``; the seconds it took.  :raises ContainerError: it could not be pulled.

        ``tls_verify=False``: over plain HTTP (the testbed's registry); podman is told so, Docker
        must have the registry in its ``insecure-registries``."""
        t0 = time.monotonic()
        plain = ("--tls-verify=false",) if not tls_verify and self.name == "podman" else ()
        done = self._call("pull", "--quiet", *plain, image, timeout_s=3600.0)
        if done.returncode != 0:
            raise ContainerError(f"cannot pull {image}: {_last_line(done.stderr)}")
        return time.monotonic() - t0

    def ended(self, name: str, wait_s: float = 30.0) -> Ended | None:
        """How the container ``name`` ended, or ``None`` if the engine does not know it.

        The engine's ``run`` may return before the container's end is recorded (podman, after
        an OOM kill: "no such exit code (container in state running)", its status 127): a
        container still running is waited for (``wait``, up to ``wait_s``) and asked again."""
        state = self._state(name)
        if state is not None and state.get("Running"):
            with contextlib.suppress(ContainerError):
                self._call("wait", name, timeout_s=wait_s)
            state = self._state(name)
        if state is None or state.get("Running"):
            return None
        try:
            return Ended(int(state["ExitCode"]), bool(state.get("OOMKilled")))
        except (ValueError, KeyError, TypeError):
            return None

    def _state(self, name: str) -> dict[str, Any] | None:
        """The engine's ``State`` of the container ``name`` (None: it does not know it)."""
        done = self._call("inspect", "--format", "{{json .State}}", name)
        if done.returncode != 0:
            return None
        try:
            state = json.loads(done.stdout.strip().splitlines()[0])
        except (ValueError, IndexError):
            return None
        return state if isinstance(state, dict) else None

    def signal(self, name: str, sig: str) -> None:
        """Send ``sig`` (``TERM``, ``KILL``) to the container's processes, if it runs."""
        self._call("kill", "--signal", sig, name, timeout_s=30.0)

    def remove(self, *names: str) -> None:
        """Remove containers, running or not (no error for those already gone)."""
        if names:
            self._call("rm", "--force", "--time", "0", *names, timeout_s=60.0)

    def ours(self) -> list[str]:
        """The ids of every container of this agent, running or not."""
        done = self._call("ps", "--all", "--quiet", "--filter", f"label={AGENT_LABEL}={self.agent_key}")
        return done.stdout.split() if done.returncode == 0 else []

    def remove_ours(self) -> int:
        """Remove every container of this agent; how many there were."""
        ids = self.ours()
        self.remove(*ids)
        return len(ids)


class OomWatch:
    """Whether the kernel's OOM killer acted in a container's memory group, under cgroup v1.

    The engine makes the container's group inside the task's (``--cgroup-parent``) and removes
    it when the container ends, and v1 counts OOM kills in the group itself only, not in its
    parents; some engines (podman 4.3 with runc, here) do not report them either.  So a thread
    registers an eventfd on the container group's ``memory.oom_control`` as soon as the group
    appears; the kernel signals it on an OOM and when the group goes.  A wake-up while the group
    can still be read is an OOM.
    """

    def __init__(self, parent: str) -> None:
        self.parent = parent  # the task group's directory in the memory hierarchy
        self.oom = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="oom-watch")
        self._thread.start()

    def _find(self) -> str | None:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.parent):
                if entry.is_dir() and entry.name != "conmon":
                    return entry.path
        return None

    def _watch(self) -> None:
        from .cgroupfs import eventfd  # (the package's: this file also runs alone, as the reaper)

        group = None
        while group is None and not self._stop.wait(0.01):
            group = self._find()
        if group is None:
            return
        try:
            efd = eventfd()  # non-blocking: waited for with select
        except OSError:
            return
        try:
            ofd = os.open(os.path.join(group, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(efd)
            return  # the container ended already
        try:
            with open(os.path.join(group, "cgroup.event_control"), "w") as f:
                f.write(f"{efd} {ofd}")
        except OSError:
            os.close(ofd)
            os.close(efd)
            return
        try:
            while True:
                select.select([efd], [], [])
                with contextlib.suppress(BlockingIOError):
                    os.read(efd, 8)
                try:
                    os.pread(ofd, 4096, 0)
                except OSError:
                    return  # the group is gone: the kernel's last signal
                self.oom = True
        finally:
            os.close(ofd)
            os.close(efd)

    def done(self) -> bool:
        """Whether an OOM kill happened; call once the container is removed."""
        self._stop.set()
        self._thread.join(2.0)
        return self.oom


def start_reaper(engine: Engine) -> tuple[subprocess.Popen[bytes], int]:
    """Start the watcher that removes ``engine``'s agent's containers when the agent is gone;
    the process and the write end of its pipe, to hold open as long as the agent lives."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), "reap", "--engine",
                                 engine.program, "--runtime", engine.runtime, "--agent-key",
                                 engine.agent_key], stdin=read_end, stdout=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return proc, write_end


def reap(engine: Engine) -> int:
    """Wait for end-of-file on standard input (the agent's end), then remove its containers."""
    while True:
        try:
            if not os.read(0, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    try:
        removed = engine.remove_ours()
    except ContainerError as e:
        print(f"rpiaas-agent reaper: {e}", file=sys.stderr)
        return 1
    if removed:
        print(f"rpiaas-agent reaper: removed {removed} container(s) of {engine.agent_key}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rpiaas-agent-containers")
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("reap", help="remove an agent's containers once its pipe on stdin closes")
    r.add_argument("--engine", required=True)
    r.add_argument("--runtime", default="")
    r.add_argument("--agent-key", required=True)
    args = parser.parse_args(argv)
    import signal
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe's end ends the watch
    return reap(Engine(args.engine, args.runtime, args.agent_key))


if __name__ == "__main__":
    sys.exit(main())
