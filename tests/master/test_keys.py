"""The master's typed app state: every key holds what its type says once the app has started."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import free_port
from rpiaas.auth import NodeTokens
from rpiaas.live.run_manager import RunManager
from rpiaas.master import MasterConfig, Poller, Registry, create_app, load_master_config
from rpiaas.master.keys import CONFIG, NODE_TOKENS, POLLER, REGISTRY, RUNS, STORE
from rpiaas.store import HistoryStore


def test_the_app_state_after_start(tmp_path: Path) -> None:
    (tmp_path / "master.yaml").write_text(
        "cluster:\n  clusters:\n    - {domain: c.test, prefix: 127.0.1, count: 2, type: rpi4b}\n"
        f"poll_interval_s: 60\nstore: history.db\nruns_dir: runs\n"
        f"agents:\n  node1.c.test: '127.0.0.1:{free_port()}'\n")
    app = create_app(load_master_config(tmp_path / "master.yaml"))
    assert isinstance(app[CONFIG], MasterConfig) and isinstance(app[REGISTRY], Registry)
    assert isinstance(app[NODE_TOKENS], NodeTokens) and app[NODE_TOKENS].secret is None

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")):
            assert isinstance(app[STORE], HistoryStore) and isinstance(app[POLLER], Poller)
            runs = app[RUNS]
            assert isinstance(runs, RunManager)
            assert runs.runs_dir == tmp_path / "runs"
            assert runs.agent("node2.c.test") is app[REGISTRY].get("node2.c.test")
            assert runs.twin is not None  # every live run carries its simulated twin

    asyncio.run(go())
