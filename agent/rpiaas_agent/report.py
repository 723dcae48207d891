"""The node report: one document behind both ``GET /info`` (JSON) and ``GET /metrics``.

Field names carry their units (``_bytes``, ``_s``, ``_c``, ``_ratio``).  A
reading this machine does not have is ``null``: ``cpu.temperature_c`` without
a thermal zone, ``throttling`` without ``vcgencmd``, ``cpu.usage_ratio``
before the first sample, ``disk`` when the file system does not answer,
``speed``'s numbers until the agent has measured its kernel (a second or so
after it starts), ``power`` without a power source (the ``power_source``
setting, :mod:`rpiaas_agent.power`) or while it cannot be read.

``cpu.busy_s`` is a counter, read when the report is made: the node's busy CPU
seconds summed over its cores (``/proc/stat``, since boot), or on an emulated
node its tasks' (since the agent started).  The master takes differences of
it, so no task's CPU time is lost between two polls, however far apart.
``cpu.agent_busy_s`` is the agent's own.  A counter that goes down means the
node (or the emulating agent) started again.

``emulated`` is true when the agent stands for a node on a shared machine
(the ``emulate`` setting): then ``cpu`` and ``memory`` are its own tasks'
against the node's ``cores`` and ``mem_mb`` (:mod:`rpiaas_agent.emulation`),
and ``load`` is null, the host's being no node's own.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from aiohttp import web

from . import __version__, readings
from .emulation import EmulatedSampler
from .keys import CONFIG, CPU, POWER, TASKS, THERMAL, THROTTLE

__all__ = ["collect"]


async def collect(app: web.Application) -> dict[str, Any]:
    """The current report of the node that ``app`` runs on."""
    config, cpu = app[CONFIG], app[CPU]
    usage = cpu.usage_ratio
    emulated = isinstance(cpu, EmulatedSampler)
    return {
        "agent": {"name": "rpiaas-agent", "version": __version__, "pid": os.getpid()},
        "node": {"name": config.node_name, "hostname": socket.gethostname()},
        "time_s": round(time.time(), 3),  # the node's wall clock, for the master to check skew
        "uptime_s": {"system": readings.system_uptime_s(), "process": readings.process_uptime_s()},
        "cpu": {
            "cores": cpu.cores,
            "usage_ratio": usage,
            "usage_ratio_mean": round(sum(usage) / len(usage), 4) if usage else None,
            "busy_s": round(cpu.busy_s(), 3),
            "agent_busy_s": round(readings.agent_busy_s(), 3),
            "temperature_c": app[THERMAL].celsius(),
        },
        # an emulated node's load would be the host's: it has none of its own
        "load": None if emulated else readings.load_average(),
        "memory": cpu.memory() if isinstance(cpu, EmulatedSampler) else readings.memory(),
        "disk": await readings.disk_usage(config.disk_path),
        "throttling": app[THROTTLE].flags,
        "speed": app[TASKS].speed(),
        "tasks": app[TASKS].usage(),
        "power": app[POWER].latest,
        "emulated": emulated,
    }
