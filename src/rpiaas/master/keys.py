"""Typed keys of the master's application state."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth import NodeTokens
from ..live.run_manager import RunManager
from ..store import HistoryStore
from .config import MasterConfig
from .poller import Poller
from .registry import Registry
from .storeaccess import StoreReader

__all__ = ["CONFIG", "NODE", "NODE_TOKENS", "POLLER", "REGISTRY", "RUNS", "STORE", "STORE_READER"]

CONFIG = web.AppKey("config", MasterConfig)
REGISTRY = web.AppKey("registry", Registry)
STORE = web.AppKey("store", HistoryStore)
STORE_READER = web.AppKey("store_reader", StoreReader)
POLLER = web.AppKey("poller", Poller)
RUNS = web.AppKey("runs", RunManager)
NODE_TOKENS = web.AppKey("node_tokens", NodeTokens)
# request[NODE]: the node whose token a report came with (a plain key before aiohttp 3.12)
NODE: Any = web.RequestKey("node", str) if hasattr(web, "RequestKey") else "rpiaas.node"
