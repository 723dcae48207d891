"""The typed keys of the application's state (``app[CONFIG]`` is a :class:`Config`)."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .readings import CpuSampler, ThermalZone, ThrottleMonitor

__all__ = ["CONFIG", "CPU", "THERMAL", "THROTTLE"]

CONFIG = web.AppKey("config", Config)
CPU = web.AppKey("cpu", CpuSampler)
THERMAL = web.AppKey("thermal", ThermalZone)
THROTTLE = web.AppKey("throttle", ThrottleMonitor)
