"""Typed keys of the master's application state."""

from __future__ import annotations

from aiohttp import web

from ..store import HistoryStore
from .config import MasterConfig
from .poller import Poller
from .registry import Registry

__all__ = ["CONFIG", "POLLER", "REGISTRY", "STORE"]

CONFIG = web.AppKey("config", MasterConfig)
REGISTRY = web.AppKey("registry", Registry)
STORE = web.AppKey("store", HistoryStore)
POLLER = web.AppKey("poller", Poller)
