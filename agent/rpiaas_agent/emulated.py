"""Many emulated nodes in one process: each an agent app of its own, its tasks timers, not processes.

``rpiaas-agent-emulated NODES.json`` serves one agent application
(:func:`rpiaas_agent.app.create_app`: the same routes, middlewares, token
check, boot report and task-end pushes as ``rpiaas-agent``) per node, each on
its own port with its own token, in one process and one event loop.  It is
the way to test a master at lab scale on one machine, as KWOK is for
Kubernetes: a thousand agent processes would need some 40 GB; a thousand
apps in one process need about 100 MB.

What differs from an agent process is what a task *is*:

* a task is a timer of the event loop (:class:`TimerTaskManager`), not a
  worker process: it is admitted as on a real agent (cores, memory, ids),
  then ends after its ``duration_s`` (``sleep``, ``memory``, ``io``) or its
  ``work_core_s`` over its cores (``cpu``, at the reference speed: the node's
  ``speed.relative`` is 1); ``command`` tasks are refused as ``allow_commands``
  is off.  A kill ends it at once.  ``/info``'s ``tasks.runner`` is ``timer``
  (``process`` on a real agent), and a live run's ``run.json`` says so;
* its readings (:class:`TimerSampler`) are those of the tasks as declared: a
  ``cpu`` task keeps its cores busy until it ends, a ``memory`` task holds its
  ``mem_mb``; ``sleep``, ``io`` and ``memory`` tasks use no CPU.  They are
  emulated readings, not measurements (``"emulated": true``).

NODES.json holds ``{"common": {SETTINGS}, "nodes": [{SETTINGS}, ...]}``: each
node's settings are ``common`` updated by its own (at least ``name``,
``port`` and ``token_file``), checked as the agent's settings are
(:mod:`rpiaas_agent.config`); ``emulate`` is always on.  Exit codes as
``rpiaas-agent``'s: 0 stopped by a signal, 1 cannot listen, 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__, workload
from .app import create_app
from .cli import _RUNNER_TAKES_SHUTDOWN_TIMEOUT, SHUTDOWN_TIMEOUT_S, _quiet_bad_requests
from .config import Config, ConfigError, load_config
from .emulation import EmulatedSampler
from .keys import LISTENING
from .tasks import Notify, Task, TaskManager, TaskRefused

__all__ = ["TimerSampler", "TimerTaskManager", "load_nodes", "main", "serve_many"]

log = logging.getLogger("rpiaas_agent.emulated")

EXIT_OK, EXIT_LISTEN, EXIT_CONFIG = 0, 1, 2
_MB = 1 << 20


def duration_s(task: Task) -> float:
    """How long a timer task lasts: its ``duration_s``, or a ``cpu`` task's work over its cores
    at the reference speed."""
    s = task.spec
    if s.duration_s is not None:
        return s.duration_s
    return (s.work_core_s or 0.0) / max(1, s.cores)


def busy_cores(task: Task) -> int:
    """The cores a timer task keeps busy while it runs: a ``cpu`` task's, else none."""
    return task.spec.cores if task.spec.kind == "cpu" else 0


def held_mb(task: Task) -> float:
    """The memory a timer task holds while it runs: a ``memory`` task's ``mem_mb``, else none."""
    return float(task.spec.mem_mb) if task.spec.kind == "memory" else 0.0


class TimerTaskManager(TaskManager):
    """Tasks as timers of the event loop: admitted as by :class:`TaskManager`, no process each."""

    runner = "timer"
    uses_cgroups = False  # a timer has no process to hold to limits

    def __init__(self, config: Config, notify: Notify | None = None) -> None:
        super().__init__(config, notify)
        self.kernel_ops_per_s = float(workload.REFERENCE_OPS_PER_S)  # speed.relative 1
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _start(self, task: Task) -> None:
        if task.spec.kind == "command":  # not reached while allow_commands is off
            raise TaskRefused(403, "command tasks are not run on an emulated node")
        loop = asyncio.get_running_loop()
        task.start_mono = time.monotonic()
        task.started_s = time.time()
        self._timers[task.spec.id] = loop.call_later(duration_s(task), self._timer_ended, task, 0)

    def _timer_ended(self, task: Task, code: int) -> None:
        self._timers.pop(task.spec.id, None)
        if task.state != "running":
            return
        ended = time.monotonic()
        cpu_s = busy_cores(task) * (ended - task.start_mono)
        usage = resource.struct_rusage((cpu_s, 0.0) + (0,) * 14)
        peak_kib = int(held_mb(task) * 1024)
        self._ended(task, code, usage, peak_kib, ended)

    async def kill(self, task_id: str, reason: str = "killed on request") -> Task:
        """End a running timer task at once (exit status as by SIGTERM); the task as it ended."""
        task = self.get(task_id)
        if task is None:
            raise TaskRefused(404, f"no task {task_id!r}")
        if task.state == "running":
            if task.kill_reason is None:
                task.kill_reason = reason
            timer = self._timers.pop(task_id, None)
            if timer is not None:
                timer.cancel()
            self._timer_ended(task, -signal.SIGTERM)
        return task

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: no speed to measure; at the end, every task killed."""
        yield
        for task_id in list(self._running):
            await self.kill(task_id, "the agent stopped")


class TimerSampler(EmulatedSampler):
    """Readings of a node whose tasks are timers: a ``cpu`` task's cores busy while it runs,
    a ``memory`` task's ``mem_mb`` held (emulated readings, see the module)."""

    def busy_s(self) -> float:
        now = time.monotonic()
        running = [t for t in self.tasks.tasks() if t.state == "running"]
        self.rss_bytes = int(sum(held_mb(t) for t in running) * _MB)
        total = self.tasks.ended_cpu_s + sum(busy_cores(t) * max(0.0, now - t.start_mono)
                                             for t in running)
        self._counter_s = max(self._counter_s, total)
        return self._counter_s


# ---------------------------------------------------------------- the nodes file
def load_nodes(path: str | Path) -> list[Config]:
    """Each node's settings in ``path`` (see the module); :class:`ConfigError` naming the node and key."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise ConfigError(f"{p}: nodes: expected a list of at least one node's settings")
    common = data.get("common", {})
    if not isinstance(common, dict):
        raise ConfigError(f"{p}: common: expected a table of settings")
    configs: list[Config] = []
    names: set[str] = set()
    for i, node in enumerate(data["nodes"]):
        where = f"{p}: nodes[{i}]"
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: expected a table of settings")
        for key in ("name", "port", "token_file"):
            if key not in node:
                raise ConfigError(f"{where}: {key}: missing")
        if "token" in node or "token" in common:
            raise ConfigError(f"{where}: token: give token_file, never the token itself")
        try:
            config = load_config({**common, **node, "emulate": True}, env={})
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).lstrip('-').replace('-', '_', 1)}") from None
        if config.name in names:
            raise ConfigError(f"{where}: name: {config.name!r} is given twice")
        names.add(config.name)
        configs.append(config)
    return configs


# ---------------------------------------------------------------- serving
async def serve_many(configs: Sequence[Config], stop: asyncio.Event | None = None,
                     ports_file: str | None = None) -> None:
    """Serve an agent app per config (tasks as timers) until ``stop`` is set (default: SIGTERM or
    SIGINT), then shut each down cleanly.

    ``ports_file``: once every node listens, write there ``{name: port}`` as JSON (whole or not
    at all): with ``port`` 0 each node gets a free port, told to whoever starts the master.
    """
    runners: list[web.AppRunner] = []
    ports: dict[str, int] = {}
    timeout: dict[str, Any] = {"shutdown_timeout": SHUTDOWN_TIMEOUT_S}
    on_runner = _RUNNER_TAKES_SHUTDOWN_TIMEOUT  # see rpiaas_agent.cli
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for config in configs:
            app = create_app(config, task_manager=TimerTaskManager, emulated_sampler=TimerSampler)
            runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                   **(timeout if on_runner else {}))
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, config.host, config.port, **({} if on_runner else timeout)).start()
            app[LISTENING].set()
            ports[config.name] = int(runner.addresses[0][1])
        if ports_file is not None:
            tmp = Path(ports_file + ".tmp")
            tmp.write_text(json.dumps(ports) + "\n", encoding="utf-8")
            tmp.replace(ports_file)
        log.warning("rpiaas-agent-emulated %s: %d nodes listening on %s, ports %d to %d", __version__,
                    len(configs), configs[0].host, min(ports.values()), max(ports.values()))
        await stop.wait()
        log.warning("stopping")
    finally:
        await asyncio.gather(*(r.cleanup() for r in runners), return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="rpiaas-agent-emulated",
        description="Serve many emulated nodes in one process: an agent API per node, each on its "
                    "own port with its own token; tasks are timers, not processes.")
    p.add_argument("--version", action="version", version=f"rpiaas-agent {__version__}")
    p.add_argument("nodes", metavar="NODES.json",
                   help='{"common": {SETTINGS}, "nodes": [{SETTINGS}, ...]}: the settings of each node')
    p.add_argument("--ports-file", metavar="FILE",
                   help="once every node listens, write {name: port} there as JSON (a node's port 0: "
                        "a free one)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                   help="default warning: a thousand nodes' info lines would flood the log")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_quiet_bad_requests)
    try:
        configs = load_nodes(args.nodes)
    except ConfigError as e:
        print(f"rpiaas-agent-emulated: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(serve_many(configs, ports_file=args.ports_file))
    except OSError as e:  # a port taken
        print(f"rpiaas-agent-emulated: error: cannot listen: {e}", file=sys.stderr)
        return EXIT_LISTEN
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
