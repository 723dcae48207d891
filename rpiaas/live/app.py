"""The master's web application: ``create_app(config)`` with the store and poller as its resources."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..store import open_store
from .client import AgentClient
from .config import MasterConfig
from .keys import CONFIG, POLLER, REGISTRY, STORE
from .middlewares import json_errors
from .poller import Poller
from .registry import Registry
from .routes import setup_routes

__all__ = ["CONFIG", "POLLER", "REGISTRY", "STORE", "create_app"]

async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await asyncio.to_thread(open_store, app[CONFIG].store)
    app[STORE] = store
    try:
        yield
    finally:
        await asyncio.to_thread(store.close)


async def _poller_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with AgentClient(timeout_s=config.timeout_s) as client:
        poller = Poller(app[REGISTRY], app[STORE], client, config.poll_interval_s, config.timeout_s)
        app[POLLER] = poller
        poller.start()
        try:
            yield
        finally:
            await poller.stop()


def create_app(config: MasterConfig) -> web.Application:
    """The master: polls the cluster's agents into the history store and serves ``/api/v1/``."""
    app = web.Application(middlewares=[json_errors])
    app[CONFIG] = config
    app[REGISTRY] = Registry(config)
    app.cleanup_ctx.extend([_store_ctx, _poller_ctx])  # the store outlives the poller
    setup_routes(app)
    return app
