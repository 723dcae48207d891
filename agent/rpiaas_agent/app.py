"""The agent's application factory, :func:`create_app`.

The state lives under the typed keys of :mod:`rpiaas_agent.keys`.  The
background samplers (CPU usage, throttling), the task manager (its speed
measurement, and killing the tasks at the end) and the HTTP client that
pushes task ends start and stop with the app through ``cleanup_ctx``, so an
app made for a test and one served by ``rpiaas-agent`` behave alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Callable
from urllib.parse import quote

import psutil
from aiohttp import web

from .config import Config
from .emulation import EmulatedSampler
from .keys import CONFIG, CPU, LISTENING, NOTIFIER, POWER, TASKS, THERMAL, THROTTLE
from .middlewares import body_limit_middleware, error_middleware, token_middleware
from .notify import Notifier
from .power import PowerMonitor
from .readings import CpuSampler, ThermalZone, ThrottleMonitor
from .redact import redacting_logs
from .routes import routes
from .tasks import TaskManager

__all__ = ["create_app"]


def create_app(config: Config | None = None, task_manager: type[TaskManager] = TaskManager,
               emulated_sampler: type[EmulatedSampler] = EmulatedSampler) -> web.Application:
    """A new agent application for ``config`` (defaults if ``None``); serve it with aiohttp.

    ``task_manager`` and ``emulated_sampler`` (with ``emulate`` on) run and read its tasks:
    :mod:`rpiaas_agent.emulated` gives timers instead of processes, the API staying this one.
    """
    config = Config() if config is None else config
    app = web.Application(
        middlewares=[error_middleware, body_limit_middleware, token_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[THERMAL] = ThermalZone(config.sysfs_root)
    app[THROTTLE] = ThrottleMonitor(config.vcgencmd, config.throttle_interval_s)
    app[NOTIFIER] = Notifier(config.token, config.report_from)
    app[LISTENING] = asyncio.Event()
    app[TASKS] = task_manager(config, notify=app[NOTIFIER].push)
    app[CPU] = emulated_sampler(config.sample_interval_s, app[TASKS]) if config.emulate \
        else CpuSampler(config.sample_interval_s)
    app[POWER] = PowerMonitor(config.power_source, config.power_interval_s, config.hwmon_path,
                              config.vcgencmd)
    app.add_routes(routes)
    # first in, last out: no credential reaches a log while anything else runs
    app.cleanup_ctx.append(redacting_logs(lambda a: [t] if (t := a[CONFIG].token) else []))
    app.cleanup_ctx.append(_background("cpu sampler", lambda a: a[CPU].run()))
    app.cleanup_ctx.append(_background("throttle monitor", lambda a: a[THROTTLE].run()))
    app.cleanup_ctx.append(_background("power monitor", lambda a: a[POWER].run()))
    # the notifier outlives the tasks: the ends of those killed at shutdown are pushed too
    app.cleanup_ctx.append(app[NOTIFIER].run)
    app.cleanup_ctx.append(_boot_report)
    app.cleanup_ctx.append(app[TASKS].run)
    app.on_response_prepare.append(_common_headers)
    return app


async def _boot_report(app: web.Application) -> AsyncIterator[None]:
    """With ``master_url``: tell the master the node has booted, and how long it took.

    The agent's service starts at boot, so the node's uptime now is its boot
    time (kernel start to service start); an emulated node (a local testbed)
    is the agent's process, so its boot time is the agent's own start up to now.  The master accepts the report with
    the node's token (the agent's own) from the node's own address; it is
    retried like a task end until it gets through.  It is sent once the agent accepts
    connections (:data:`~.keys.LISTENING`, set by the command that serves it): a node the
    master takes as booted answers its poll at once.
    """
    config = app[CONFIG]

    async def report() -> None:
        await app[LISTENING].wait()
        started_s = psutil.Process().create_time() if config.emulate else psutil.boot_time()
        uptime_s = max(0.0, time.time() - started_s)
        url = f"{config.master_url}/api/v1/nodes/{quote(config.node_name, safe='')}/booted"
        app[NOTIFIER].push(url, {"uptime_s": round(uptime_s, 3)}, what="the boot report")

    task = asyncio.ensure_future(report()) if config.master_url else None
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _background(name: str, job: Callable[[web.Application], Awaitable[None]]
                ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs ``job(app)`` as a task while the app runs."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.ensure_future(job(app))
        yield
        task.cancel()
        # the job logs its own failures; one must not stop the others' cleanup
        await asyncio.gather(task, return_exceptions=True)

    ctx.__name__ = ctx.__qualname__ = name.replace(" ", "_")
    return ctx


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Readings go stale at once; say nothing about the server's software versions.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = "rpiaas-agent"
