"""Typed keys of the master's application state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..store import HistoryStore
from .config import MasterConfig
from .poller import Poller
from .registry import Registry

if TYPE_CHECKING:
    from .runs import RunManager

__all__ = ["CONFIG", "POLLER", "REGISTRY", "RUNS", "STORE"]

CONFIG = web.AppKey("config", MasterConfig)
REGISTRY = web.AppKey("registry", Registry)
STORE = web.AppKey("store", HistoryStore)
POLLER = web.AppKey("poller", Poller)
RUNS: web.AppKey[RunManager] = web.AppKey("runs")
