"""The ``process`` driver: a node that is a process on this machine (a local testbed's agent).

``off`` ends the node's process (SIGTERM, SIGKILL after ``timeout_s``); ``on``
starts it again with the command line, working directory and environment it
was first started with; ``state`` is whether that process runs.  The boot of
such a node is its agent's start up to its boot report to the master.

Everything the driver needs is in the directory ``state_dir`` (``power:
{driver: process, state_dir: DIR}`` in the cluster file), which the testbed
writes when it starts the node (:func:`write_command`, :func:`record_pid`):

- ``NODE.json`` (mode 600): ``argv``, ``cwd``, ``env``, ``log``: how to start it;
- ``NODE.pid``: ``{"pid", "start_ticks"}`` of the process that is the node now.

The master, which runs the driver, may start the process again long after the
command that first started it has gone; ``rpiaas testbed down`` reads the pid
files to stop the processes the master started.  The driver never signals this
process or its parent: a config cannot make the master a node that is switched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...model import Node, PowerSpec
from ..base import PowerError, SwitchState, register_driver
from ..detached import pid_alive, proc_stat, reap, start_process

__all__ = ["DEFAULT_TIMEOUT_S", "NodeProcess", "ProcessDriver", "read_command", "record_pid",
           "running_pid", "write_command"]

DEFAULT_TIMEOUT_S = 10.0


def _private_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(data, f, indent=2)
        f.write("\n")
    tmp.replace(path)


def write_command(state_dir: Path, name: str, argv: list[str], cwd: Path, log: Path,
                  env: dict[str, str], **extra: Any) -> None:
    """Record how node ``name``'s process is started (``extra``: what a driver adds, as the
    ``qemu`` driver's QMP socket)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private_json(state_dir / f"{name}.json", {"argv": argv, "cwd": str(cwd), "log": str(log),
                                               "env": env, **extra})


def read_command(state_dir: Path, name: str) -> dict[str, Any]:
    """What :func:`write_command` recorded for ``name``; PowerError if it cannot be read."""
    path = state_dir / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("argv"), list):
            raise ValueError("no argv")
    except (OSError, ValueError) as e:
        raise PowerError(f"{name}: cannot read {path}: {getattr(e, 'strerror', None) or e}") \
            from None
    return data


def record_pid(state_dir: Path, name: str, pid: int) -> None:
    """Record ``pid`` as node ``name``'s process now."""
    stat = proc_stat(pid)
    _private_json(state_dir / f"{name}.pid", {"pid": pid, "start_ticks": stat[1] if stat else None})


def running_pid(state_dir: Path, name: str) -> tuple[int, int | None] | None:
    """``(pid, start_ticks)`` of node ``name``'s process if it runs, else None."""
    try:
        data = json.loads((state_dir / f"{name}.pid").read_text(encoding="utf-8"))
        pid, ticks = int(data["pid"]), data.get("start_ticks")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ticks = int(ticks) if isinstance(ticks, int) else None
    return (pid, ticks) if pid_alive(pid, ticks) else None


@dataclass
class NodeProcess:
    """The process that is node ``name``, as ``state_dir`` records it."""

    name: str
    state_dir: Path
    timeout_s: float = DEFAULT_TIMEOUT_S

    def start(self) -> int:
        """Start the node's process from its recorded command; its pid."""
        cmd = read_command(self.state_dir, self.name)
        env = cmd.get("env")
        try:
            popen = start_process([str(a) for a in cmd["argv"]], Path(cmd["log"]),
                                  Path(cmd["cwd"]), env=env if isinstance(env, dict) else None)
        except OSError as e:
            raise PowerError(f"{self.name}: cannot start {cmd['argv'][0]}: "
                             f"{e.strerror or e}") from None
        record_pid(self.state_dir, self.name, popen.pid)
        return popen.pid

    async def end(self, pid: int, ticks: int | None) -> None:
        """SIGTERM, and SIGKILL to its process group after ``timeout_s``."""
        if pid in (os.getpid(), os.getppid()):
            raise PowerError(f"{self.name}: refused: pid {pid} is the master itself")
        self._signal(pid, ticks, signal.SIGTERM)
        if not await self.gone(pid, ticks, self.timeout_s):
            self._signal(pid, ticks, signal.SIGKILL, group=True)
            if not await self.gone(pid, ticks, 5.0):
                raise PowerError(f"{self.name}: pid {pid} still runs after SIGKILL")
        reap(pid)

    @staticmethod
    def _signal(pid: int, ticks: int | None, sig: signal.Signals, group: bool = False) -> None:
        if not pid_alive(pid, ticks):
            return
        try:
            if group:
                os.killpg(pid, sig)  # it leads a session (and group) of its own
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as e:
            raise PowerError(f"pid {pid}: {e.strerror}") from None

    @staticmethod
    async def gone(pid: int, ticks: int | None, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pid_alive(pid, ticks):
            reap(pid)
            if loop.time() >= deadline:
                return not pid_alive(pid, ticks)
            await asyncio.sleep(0.05)
        return True


class ProcessDriver:
    """Switches a node that is a process on this machine (see the module)."""

    name = "process"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        state_dir = spec.get("state_dir")
        if not isinstance(state_dir, str) or not state_dir:
            raise PowerError(f"{node.name}: power driver {spec.driver!r} needs state_dir")
        timeout = spec.get("timeout_s", DEFAULT_TIMEOUT_S)
        self.node = node.name
        self.proc = NodeProcess(node.name, Path(state_dir), float(timeout))

    async def on(self) -> None:
        if running_pid(self.proc.state_dir, self.node) is None:
            self.proc.start()

    async def off(self) -> None:
        current = running_pid(self.proc.state_dir, self.node)
        if current is not None:
            await self.proc.end(*current)

    async def state(self) -> SwitchState:
        return SwitchState.ON if running_pid(self.proc.state_dir, self.node) else SwitchState.OFF


@register_driver("process")
def _process(node: Node, spec: PowerSpec) -> ProcessDriver:
    return ProcessDriver(node, spec)
