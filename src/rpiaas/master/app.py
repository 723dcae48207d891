"""The master's web application: ``create_app(config)`` with the store and poller as its resources.

On start the master opens the store, takes up every node's last known state
from it (so a restart neither forgets history nor records changes that did
not happen), starts polling and, with a ``retention`` in its config, applies
it at start and every ``retention.every_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from ..auth import NodeTokens
from ..live.agent_client import AgentClient
from ..live.run_manager import RunManager
from ..sim.twin import simulate_twin
from ..store import HistoryStore, open_store
from ..store.base import failure_reason
from .boot import setup_boot_routes
from .config import MasterConfig, Retention
from .dashboard import setup_dashboard
from .keys import CONFIG, NODE_TOKENS, POLLER, REGISTRY, RUNS, STORE, STORE_READER
from .metrics import setup_metrics
from .middlewares import bearer_token, body_limit, json_errors
from .poller import Poller
from .redact import redacting_logs
from .registry import Registry
from .routes import setup_routes
from .runs_api import setup_run_routes, watch_interval
from .storeaccess import StoreReader

__all__ = ["CONFIG", "POLLER", "REGISTRY", "STORE", "apply_retention", "create_app"]

log = logging.getLogger(__name__)

async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await asyncio.to_thread(open_store, app[CONFIG].store)
    app[STORE] = store
    app[STORE_READER] = reader = StoreReader(store)
    restored = app[REGISTRY].restore(await asyncio.to_thread(store.latest))
    if restored:
        log.info("took up the last known state of %d nodes from the store", restored)
    try:
        yield
    finally:
        reader.close()
        try:
            await asyncio.to_thread(store.close)
        except Exception as e:  # the samples it could not write are lost: say how many
            log.error("history store: %d samples not written at exit: %s", store.pending,
                      failure_reason(e))


async def _poller_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with AgentClient(timeout_s=config.timeout_s, keepalive=True) as client:
        poller = Poller(app[REGISTRY], app[STORE], client, config.poll_interval_s, config.timeout_s,
                        misses=config.offline_after)
        app[POLLER] = poller
        poller.start()
        try:
            yield
        finally:
            await poller.stop()


async def _runs_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # task starts can take longer than a poll: the agent forks the task first
    tokens = app[NODE_TOKENS]
    by_url = {e.base_url: t for e in app[REGISTRY] if (t := tokens.get(e.name)) is not None}
    async with AgentClient(timeout_s=max(5.0, config.timeout_s), tokens=by_url,
                           keepalive=True) as client:
        registry = app[REGISTRY]
        manager = RunManager(Path(config.runs_dir), registry.get, client, app[STORE],
                             watch_interval(app), twin=simulate_twin,
                             hold_limit_s=config.run_hold_limit_s)
        app[RUNS] = manager
        if config.resume:
            resumed = manager.resume_all()
            log.info("resumed %d live runs: %s", len(resumed), ", ".join(resumed) or "none")
        elif unfinished := manager.unfinished():
            log.warning("%d unfinished live runs in %s; start with --resume to go on with them",
                        len(unfinished), config.runs_dir)
        try:
            yield
        finally:
            await manager.close()


def apply_retention(store: HistoryStore, retention: Retention, now_s: float) -> dict[str, int]:
    """Downsample samples older than ``raw_s`` and delete what is older than ``keep_s``."""
    out: dict[str, int] = {}
    if retention.keep_s is not None:
        purged = store.purge(now_s - retention.keep_s)
        out.update(purged_samples=purged.samples, purged_states=purged.states,
                   purged_events=purged.events)
    compacted = store.compact(now_s - retention.raw_s, retention.resolution_s)
    out.update(compacted_samples=compacted.replaced, written_means=compacted.written)
    return out


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    retention = app[CONFIG].retention
    if retention is None:
        yield
        return

    async def run(every_s: float) -> None:
        while True:
            try:
                done = await asyncio.to_thread(apply_retention, app[STORE], retention, time.time())
                log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in done.items()))
            except Exception:  # a failed pass is retried at the next one; polling goes on
                log.exception("retention pass failed")
            await asyncio.sleep(every_s)

    task = asyncio.create_task(run(retention.every_s), name="rpiaas-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _secrets(app: web.Application) -> list[str]:
    """Every credential the master holds, kept out of its log: its token, the nodes' tokens,
    and the power drivers' and meters' credentials (SNMP communities and keys, plug passwords)."""
    config = app[CONFIG]
    switches = [s for n in config.cluster.nodes for spec in (n.power, n.meter) if spec is not None
                for s in spec.secrets()]
    return ([config.token] if config.token else []) + app[NODE_TOKENS].secrets() + switches


def create_app(config: MasterConfig) -> web.Application:
    """The master: polls the cluster's agents into the history store and serves ``/api/v1/``."""
    app = web.Application(middlewares=[json_errors, bearer_token, body_limit],
                          client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[REGISTRY] = Registry(config)
    app[NODE_TOKENS] = NodeTokens(config.node_secret, (e.name for e in app[REGISTRY]))
    # the store outlives the poller and the retention task; no credential reaches a log meanwhile
    app.cleanup_ctx.extend([redacting_logs(_secrets), _store_ctx, _poller_ctx, _retention_ctx,
                            _runs_ctx])
    setup_routes(app)
    setup_run_routes(app)
    setup_boot_routes(app)
    setup_dashboard(app)
    setup_metrics(app)
    return app
