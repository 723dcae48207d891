"""Boot reports on the master: accepted only with the node's token and from the node's address."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import free_port
from rpiaas.inputs.source import InputError
from rpiaas.master import create_app, load_master_config
from rpiaas.master.boot import BOOT_EVENT, BOOT_STATE_REASON, node_boot_token
from rpiaas.master.keys import POLLER, STORE

SECRET = "boot-secret-0123456789"
MASTER_TOKEN = "master-token-0123456789"
# The test client calls from 127.0.0.1: node1's address; node2 is elsewhere.
NODE1, NODE2 = "node1.c1.rpiaas.test", "node2.c1.rpiaas.test"

Client = TestClient[Any, Any]


def _config(tmp_path: Path, secret: bool = True) -> Path:
    (tmp_path / "token").write_text(MASTER_TOKEN + "\n")
    extra = "token_file: token\n"
    if secret:
        (tmp_path / "boot-secret").write_text(SECRET + "\n")
        extra += "boot_secret_file: boot-secret\n"
    agents = "".join(f'  {name}: "127.0.0.1:{free_port()}"\n' for name in (NODE1, NODE2))
    path = tmp_path / "master.yaml"
    path.write_text("cluster:\n  clusters:\n    - domain: c1.rpiaas.test\n      prefix: 127.0.0\n"
                    "      nodes:\n"
                    "        - {hostname: node1, type: rpi4b, suffix: 1}\n"
                    "        - {hostname: node2, type: rpi4b, suffix: 12}\n"
                    f"poll_interval_s: 60\npoll_timeout_s: 0.5\nstore: history.db\nagents:\n{agents}"
                    + extra)
    return path


def _with_master(path: Path, body: Callable[[Client, Any], Awaitable[None]]) -> None:
    app = create_app(load_master_config(path))

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            # the first poll (nobody listens: offline) is over before any report
            while app[POLLER].rounds < 1:
                await asyncio.sleep(0.01)
            await body(client, app)

    asyncio.run(go())


def _auth(node: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {node_boot_token(SECRET, node)}"}


def _report(client: Client, node: str, uptime_s: Any = 2.5, **headers: str) -> Any:
    """A boot report, with the node's token unless ``headers`` say otherwise."""
    return client.post(f"/api/v1/nodes/{node}/booted", json={"uptime_s": uptime_s},
                       headers=headers or _auth(node))


def test_a_report_with_the_nodes_token_from_its_address_is_recorded_and_marks_it_online(
        tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        resp = await _report(client, NODE1, 2.5)
        assert resp.status == 200, await resp.text()
        got = await resp.json()
        assert got["node"] == NODE1 and got["boot_s"] == 2.5 and got["via"] == "token"
        (event,) = app[STORE].events(NODE1, kind=BOOT_EVENT)
        assert event.data == {"boot_s": 2.5, "address": "127.0.0.1", "via": "token"}
        assert event.time_s == got["time_s"]
        states = app[STORE].states(NODE1)
        assert [(s.online, s.reason) for s in states][-1] == (True, BOOT_STATE_REASON)
        assert states[-2].online is False  # the first poll found no agent: booting -> online
        doc = await (await client.get(f"/api/v1/nodes/{NODE1}")).json()
        assert doc["online"] is True and doc["reason"] == ""
        assert doc["last_boot"] == {"time_s": got["time_s"], "boot_s": 2.5,
                                    "power_on_s": None}
        assert doc["last_ok_s"] is None  # a report is not a successful poll
        # a second boot: another event, the state stays online (no change recorded)
        assert (await _report(client, NODE1, 3)).status == 200
        assert [e.data["boot_s"] for e in app[STORE].events(NODE1, kind=BOOT_EVENT)] == [2.5, 3.0]
        assert len(app[STORE].states(NODE1)) == len(states)
        doc = await (await client.get(f"/api/v1/nodes/{NODE2}")).json()
        assert doc["last_boot"] is None  # node2 has not booted

    _with_master(_config(tmp_path), body)


def test_the_nodes_token_from_another_address_is_refused(tmp_path: Path) -> None:
    """node2 is at 127.0.0.12; its own token sent from 127.0.0.1 is a token taken from it."""
    async def body(client: Client, app: Any) -> None:
        resp = await _report(client, NODE2, 4.25)
        assert resp.status == 403, await resp.text()
        assert app[STORE].events(NODE2, kind=BOOT_EVENT) == []

    _with_master(_config(tmp_path), body)


def test_a_report_from_the_nodes_address_without_its_token_is_refused_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What a local process that binds node1's address can send: never accepted."""
    async def body(client: Client, app: Any) -> None:
        for headers in ({"X-No-Token": "1"}, {"Authorization": "Bearer wrong"},
                        _auth(NODE2),  # another node's token
                        {"Authorization": f"Bearer {MASTER_TOKEN}"},  # not a node's token
                        {"Authorization": f"Basic {node_boot_token(SECRET, NODE1)}"}):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="rpiaas.master.boot"):
                resp = await _report(client, NODE1, **headers)
            assert resp.status == 403, (headers, await resp.text())
            assert "refused" in (await resp.json())["error"]
            assert any(f"boot report for {NODE1} from 127.0.0.1 refused" in r.getMessage()
                       for r in caplog.records), caplog.text
            assert node_boot_token(SECRET, NODE1) not in caplog.text
        assert app[STORE].events(NODE1, kind=BOOT_EVENT) == []
        assert app[STORE].states(NODE1)[-1].online is False
        # a node nobody knows
        with caplog.at_level(logging.WARNING, logger="rpiaas.master.boot"):
            resp = await _report(client, "ghost.c1.rpiaas.test")
        assert resp.status == 404 and "unknown node 'ghost.c1.rpiaas.test'" in caplog.text

    _with_master(_config(tmp_path), body)


def test_without_a_node_secret_every_report_is_refused(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        assert (await _report(client, NODE1)).status == 403
        assert (await _report(client, NODE1, **{"X-No-Token": "1"})).status == 403

    _with_master(_config(tmp_path, secret=False), body)


def test_a_bad_report_is_400_and_records_nothing(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        url = f"/api/v1/nodes/{NODE1}/booted"
        for payload in ({}, {"uptime_s": -1}, {"uptime_s": "2"}, {"uptime_s": True},
                        {"uptime_s": 1, "extra": 0}, [1]):
            resp = await client.post(url, json=payload, headers=_auth(NODE1))
            assert resp.status == 400, (payload, await resp.text())
        resp = await client.post(url, data="2.5", headers={"Content-Type": "text/plain",
                                                           **_auth(NODE1)})
        assert resp.status == 415
        assert app[STORE].events(NODE1, kind=BOOT_EVENT) == []

    _with_master(_config(tmp_path), body)


def test_the_node_secret_comes_from_its_file_or_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_master_config(_config(tmp_path)).node_secret == SECRET  # boot_secret_file
    assert load_master_config(_config(tmp_path, secret=False)).node_secret is None
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("boot_secret_file:", "node_secret_file:"))
    assert load_master_config(path).node_secret == SECRET
    for var in ("RPIAAS_MASTER_BOOT_SECRET", "RPIAAS_MASTER_NODE_SECRET"):
        monkeypatch.setenv(var, "from-the-environment")
        assert load_master_config(_config(tmp_path)).node_secret == "from-the-environment"
        monkeypatch.delenv(var)
    path = _config(tmp_path)
    path.write_text(path.read_text() + "node_secret_file: boot-secret\n")
    with pytest.raises(InputError, match="boot_secret_file: the former name"):
        load_master_config(path)
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("boot-secret\n", "no-such-file\n"))
    with pytest.raises(InputError, match="boot_secret_file"):
        load_master_config(path)


def test_the_agent_reports_its_nodes_boot_when_it_starts(tmp_path: Path) -> None:
    """A real agent process with ``--master-url`` and node1's token: the master records its boot."""
    from agent.tests.helpers import start_agent

    app = create_app(load_master_config(_config(tmp_path)))
    token_file = tmp_path / "node1.token"
    token_file.write_text(node_boot_token(SECRET, NODE1) + "\n")
    token_file.chmod(0o600)

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            master_url = str(client.make_url("")).rstrip("/")
            sysfs = tmp_path / "sysfs-empty"
            sysfs.mkdir()
            agent = await asyncio.to_thread(
                start_agent, tmp_path, "--name", NODE1, "--sysfs-root", str(sysfs),
                "--vcgencmd", "", "--disk-path", str(tmp_path), "--master-url", master_url,
                "--token-file", str(token_file))
            try:
                for _ in range(200):
                    events = await asyncio.to_thread(app[STORE].events, NODE1, None, None, BOOT_EVENT)
                    if events:
                        break
                    await asyncio.sleep(0.05)
                assert events, "no boot report from the agent"
                assert events[-1].data["via"] == "token" and events[-1].data["boot_s"] > 0
            finally:
                agent.terminate()

    asyncio.run(go())


def test_booting_until_the_boot_report(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        auth = {"Authorization": f"Bearer {MASTER_TOKEN}"}
        assert (await client.post(f"/api/v1/nodes/{NODE1}/booting")).status == 401
        resp = await client.post(f"/api/v1/nodes/{NODE1}/booting", headers=auth)
        doc = await resp.json()
        assert resp.status == 200 and doc["booting_since_s"] > 0 and doc["online"] is False
        listed = {n["name"]: n for n in (await (await client.get("/api/v1/nodes")).json())["nodes"]}
        assert listed[NODE1]["booting_since_s"] == doc["booting_since_s"]
        await asyncio.sleep(0.05)
        assert (await _report(client, NODE1, 1.5)).status == 200
        node = await (await client.get(f"/api/v1/nodes/{NODE1}")).json()
        assert node["booting_since_s"] is None and node["online"] is True
        assert node["last_boot"]["boot_s"] == 1.5 and node["last_boot"]["power_on_s"] >= 0.05
        assert (await client.post("/api/v1/nodes/nope/booting", headers=auth)).status == 404

    _with_master(_config(tmp_path), body)
