"""The typed keys of the application's state (``app[CONFIG]`` is a :class:`Config`)."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .notify import Notifier
from .readings import CpuSampler, ThermalZone, ThrottleMonitor
from .tasks import TaskManager

__all__ = ["CONFIG", "CPU", "NOTIFIER", "TASKS", "THERMAL", "THROTTLE"]

CONFIG = web.AppKey("config", Config)
CPU = web.AppKey("cpu", CpuSampler)
THERMAL = web.AppKey("thermal", ThermalZone)
THROTTLE = web.AppKey("throttle", ThrottleMonitor)
NOTIFIER = web.AppKey("notifier", Notifier)
TASKS = web.AppKey("tasks", TaskManager)
