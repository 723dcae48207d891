"""The typed keys of the application's state (``app[CONFIG]`` is a :class:`Config`).

They are :class:`aiohttp.web.AppKey` objects where aiohttp has them (3.9 and
later); on older aiohttp (Debian bookworm's python3-aiohttp is 3.8.4) they are
plain strings, which that aiohttp expects.  Either way the type checker sees
``AppKey[T]``, so ``app[CONFIG]`` stays a :class:`Config` for it.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar, cast

from aiohttp import web

from .config import Config
from .notify import Notifier
from .power import PowerMonitor
from .readings import CpuSampler, ThermalZone, ThrottleMonitor
from .tasks import TaskManager

__all__ = ["CONFIG", "CPU", "NOTIFIER", "POWER", "TASKS", "THERMAL", "THROTTLE"]

T = TypeVar("T")

#: aiohttp's AppKey class, or None before aiohttp 3.9
_APP_KEY: type[web.AppKey[object]] | None = getattr(web, "AppKey", None)


def app_key(name: str, kind: type[T]) -> web.AppKey[T]:
    """The key ``name`` for values of type ``kind``: an ``AppKey``, or a string on aiohttp < 3.9."""
    if _APP_KEY is None:
        return cast("web.AppKey[T]", f"rpiaas_agent.{name}")
    return cast("web.AppKey[T]", _APP_KEY(name, kind))


CONFIG = app_key("config", Config)
CPU = app_key("cpu", CpuSampler)
THERMAL = app_key("thermal", ThermalZone)
THROTTLE = app_key("throttle", ThrottleMonitor)
NOTIFIER = app_key("notifier", Notifier)
TASKS = app_key("tasks", TaskManager)
POWER = app_key("power", PowerMonitor)
LISTENING = app_key("listening", asyncio.Event)  # set once the agent accepts connections
