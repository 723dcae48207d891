"""The HTTP of live runs on an in-process master: refusals before anything runs, a run's documents."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rpiaas_agent.taskspec import ID_PATTERN

from agent.tests.helpers import free_port
from rpiaas.auth import node_token
from rpiaas.live.options import RUN_ID_MAX
from rpiaas.master import create_app, load_master_config

TOKEN = "master-token-0123456789"
SECRET = "node-secret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NODE = "node1.c.test"
CLUSTER = {"clusters": [{"domain": "c.test", "prefix": "127.0.1", "count": 1, "type": "rpi4b"}]}
SCENARIO = {"name": "empty", "cluster": CLUSTER, "policy": "first_fit", "workload": {"tasks": []}}


def _with_master(tmp_path: Path, body: Callable[[TestClient[Any, Any]], Awaitable[None]],
                 secret: bool = True) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    extra = ""
    if secret:
        (tmp_path / "secret").write_text(SECRET + "\n")
        extra = "node_secret_file: secret\n"
    (tmp_path / "master.yaml").write_text(
        "cluster:\n  clusters:\n    - {domain: c.test, prefix: 127.0.1, count: 1, type: rpi4b}\n"
        f"poll_interval_s: 60\nstore: history.db\ntoken_file: token\nruns_dir: runs\n{extra}"
        f"agents:\n  {NODE}: '127.0.0.1:{free_port()}'\n")
    app = create_app(load_master_config(tmp_path / "master.yaml"))

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await body(client)

    asyncio.run(go())


@pytest.mark.parametrize(("sent", "message"), [
    ({"scenario": {**SCENARIO, "cluster": "clusters/x.yaml"}},
     "scenario.cluster: expected the cluster inline"),
    ({"scenario": {**SCENARIO, "workload": {"trace": {"file": "/etc/passwd"}}}},
     "scenario.workload.trace: the master reads no trace file"),
    ({"scenario": SCENARIO, "task_kind": "gpu"}, "task_kind: expected one of sleep, cpu"),
    ({"scenario": SCENARIO, "timescale": 0}, "timescale: expected a positive number"),
    ({"scenario": [1]}, "scenario: expected the scenario as a JSON object"),
    ({"scenario": SCENARIO, "file": 3}, "file: expected a file name"),
    ({"scenario": {**SCENARIO, "cluster": {"clusters": [{**CLUSTER["clusters"][0], "count": 2}]}}},
     "names nodes this master does not know: node2.c.test"),
    ({"scenario": {**SCENARIO, "policy": "nope"}}, "scenario: policy"),
    # a run's id names its directory: bounded, safe characters, never a path or a hidden name
    ({"scenario": SCENARIO, "id": "../escape"}, "id: expected 1 to 80 letters, digits"),
    ({"scenario": SCENARIO, "id": "runs/x"}, "id: expected 1 to 80 letters"),
    ({"scenario": SCENARIO, "id": ".hidden"}, "id: expected 1 to 80 letters"),
    ({"scenario": SCENARIO, "id": "a b"}, "got 'a b'"),
    ({"scenario": SCENARIO, "id": ""}, "id: expected 1 to 80 letters"),
    ({"scenario": SCENARIO, "id": "x" * 81}, "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'..."),
    ({"scenario": SCENARIO, "id": 7}, "id: expected a string, got int"),
])
def test_a_refused_run_answers_400_and_leaves_nothing(tmp_path: Path, sent: dict[str, Any],
                                                       message: str) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.post("/api/v1/runs", json=sent, headers=AUTH)
        assert resp.status == 400
        assert message in (await resp.json())["error"]
        assert await (await client.get("/api/v1/runs")).json() == {"runs": []}

    _with_master(tmp_path, body)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_without_a_node_secret_no_run_starts(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.post("/api/v1/runs", json={"scenario": SCENARIO}, headers=AUTH)
        assert resp.status == 400 and "no node secret" in (await resp.json())["error"]

    _with_master(tmp_path, body, secret=False)


def test_a_run_from_start_to_its_files(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.post("/api/v1/runs", json={"scenario": SCENARIO, "timescale": 0.01},
                                 headers=AUTH)
        assert resp.status == 201
        run = await resp.json()
        assert resp.headers["Location"] == f"/api/v1/runs/{run['id']}"
        for _ in range(200):  # no task: it ends as soon as it began
            doc = await (await client.get(f"/api/v1/runs/{run['id']}")).json()
            if doc["state"] != "running":
                break
            await asyncio.sleep(0.05)
        assert doc["state"] == "completed" and doc["progress"] == 1.0
        assert "run.json" in doc["files"] and doc["tasks_total"] == 0
        resp = await client.get(f"/api/v1/runs/{run['id']}/files/run.json")
        record = json.loads(await resp.text())
        assert record["mode"] == "live"
        resp = await client.get(f"/api/v1/runs/{run['id']}/files/journal.jsonl")
        assert resp.status == 404 and "no such run file" in (await resp.json())["error"]
        resp = await client.get("/api/v1/runs/nope")
        assert resp.status == 404 and await resp.json() == {"error": "no such run: nope"}
        listed = (await (await client.get("/api/v1/runs")).json())["runs"]
        assert [r["id"] for r in listed] == [run["id"]]

    _with_master(tmp_path, body)


async def _finished(client: TestClient[Any, Any], wanted: str | None) -> dict[str, Any]:
    """Run the empty scenario (it ends at once) asking for id ``wanted``; its document."""
    sent: dict[str, Any] = {"scenario": SCENARIO, "timescale": 0.01, "task_kind": "cpu"}
    if wanted is not None:
        sent["id"] = wanted
    resp = await client.post("/api/v1/runs", json=sent, headers=AUTH)
    assert resp.status == 201, await resp.text()
    run_id = (await resp.json())["id"]
    for _ in range(200):
        doc: dict[str, Any] = await (await client.get(f"/api/v1/runs/{run_id}")).json()
        if doc["state"] != "running":
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still running")


def test_a_run_has_the_id_asked_for_and_a_suffix_when_it_is_taken(tmp_path: Path) -> None:
    long = "L" * 80

    async def first(client: TestClient[Any, Any]) -> None:
        doc = await _finished(client, "exp-1.a_b")
        assert doc["id"] == "exp-1.a_b" and doc["state"] == "completed"
        # how it ran, for the dashboard
        assert (doc["policy"], doc["queue"], doc["task_kind"], doc["timescale"]) == (
            "first_fit", None, "cpu", 0.01)
        assert (await _finished(client, "exp-1.a_b"))["id"] == "exp-1.a_b-2"
        assert (await _finished(client, "exp-1.a_b"))["id"] == "exp-1.a_b-3"
        assert (await _finished(client, long))["id"] == long
        assert (await _finished(client, long))["id"] == "L" * 78 + "-2"  # still a run id
        # without an id: the scenario's name and the time, as before
        assert (await _finished(client, None))["id"].startswith("empty-")

    _with_master(tmp_path, first)
    assert (tmp_path / "runs" / "exp-1.a_b-3" / "result" / "run.json").is_file()

    async def restarted(client: TestClient[Any, Any]) -> None:
        # a master started again on the same runs_dir knows the names its directories hold
        assert (await _finished(client, "exp-1.a_b"))["id"] == "exp-1.a_b-4"
        assert (await _finished(client, "fresh"))["id"] == "fresh"

    _with_master(tmp_path, restarted)


def test_the_longest_run_id_leaves_room_for_any_task_on_the_agents() -> None:
    """A run's tasks are ``RUN.TASK.ATTEMPT`` on their agents: even the longest run id, a task id
    of 20 digits and a 9th attempt make a task name the agents take."""
    assert re.fullmatch(ID_PATTERN, f"{'x' * RUN_ID_MAX}.{2 ** 64}.9")


def test_task_ends_are_taken_from_nodes_only(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        end = {"id": "r.1.0", "state": "completed"}
        resp = await client.post("/api/v1/task-ended", json=end, headers=AUTH)  # not a node's
        assert resp.status == 401
        node_auth = {"Authorization": f"Bearer {node_token(SECRET, NODE)}"}
        resp = await client.post("/api/v1/task-ended", json=end, headers=node_auth)
        assert resp.status == 200 and await resp.json() == {"known": False}
        resp = await client.post("/api/v1/task-ended", data=json.dumps([1]), headers={
            **node_auth, "Content-Type": "application/json"})
        assert resp.status == 400
        assert (await resp.json())["error"] == "body: expected a task document (a JSON object), got list"

    _with_master(tmp_path, body)


def test_a_scenarios_switch_credentials_are_kept_nowhere_on_the_master(tmp_path: Path) -> None:
    """A scenario whose cluster carries an SNMP community (a user's lab file, sent inline) runs;
    the community is neither in the master's resume copy nor in the run's files."""
    community = "lab-community-0123456789"
    group = {**CLUSTER["clusters"][0], "power": {"driver": "snmp", "host": "192.0.2.9", "port": 1,
                                                 "community": community}}
    scenario = {**SCENARIO, "cluster": {"clusters": [group]}}

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.post("/api/v1/runs", json={"scenario": scenario, "timescale": 0.01},
                                 headers=AUTH)
        assert resp.status == 201, await resp.text()
        run = await resp.json()
        for _ in range(200):
            doc = await (await client.get(f"/api/v1/runs/{run['id']}")).json()
            if doc["state"] != "running":
                break
            await asyncio.sleep(0.05)
        assert doc["state"] == "completed"

    _with_master(tmp_path, body)
    kept = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "scenario.json" for p in kept) and any(p.name == "run.json" for p in kept)
    assert not [p for p in kept if community.encode() in p.read_bytes()]
