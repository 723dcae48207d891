"""A live run's tasks on a real agent: the start document, the measured start, ends as events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from rpiaas_agent import create_app as agent_app

from agent.tests.helpers import TOKEN, free_port, task_config
from rpiaas.core.events import Event, TaskFailed, TaskFinished
from rpiaas.live.agent_client import AgentClient
from rpiaas.live.journal import Journal
from rpiaas.live.options import LiveOptions
from rpiaas.live.shell import LiveRun
from rpiaas.master.registry import NodeEntry
from rpiaas.store import open_store

from ..helpers import cluster, scenario

TASKS = [{"arrival_s": 0, "cores": 2, "mem_mb": 256, "work_core_s": 30},
         {"arrival_s": 1, "cores": 1, "mem_mb": 128, "work_core_s": 5}]


class _Run(LiveRun):
    """A live run whose events are kept in a list (not handed to its loop)."""

    events: list[tuple[float, Event]]

    def put(self, at_s: float, ev: Event) -> None:
        self.events.append((at_s, ev))


def _run(tmp_path: Path, port: int, options: LiveOptions, client: AgentClient) -> _Run:
    sc = scenario({"name": "t", "cluster": cluster(2, {"cores": 4, "mem_mb": 2048, "speed": 1.5,
                                                      "power_idle_w": 2, "power_max_w": 6}),
                   "workload": {"tasks": TASKS}, "policy": "first_fit"})
    entries = [NodeEntry(n, "127.0.0.1", port) for n in sc.cluster.nodes]
    run = _Run("run1", sc, entries, client, open_store(str(tmp_path / "h.db")), tmp_path,
               options, notify_url="http://127.0.0.1:1/api/v1/task-ended")
    run.events = []
    run.clock.t0 = time.time()
    return run


def _inbox(run: _Run) -> list[Any]:
    out, run.events[:] = list(run.events), []
    return out


def test_the_start_document_of_each_task_kind(tmp_path: Path) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            run = _run(tmp_path, 1, LiveOptions(timescale=0.1), client)
            task = next(iter(run.scenario.workload.tasks(np.random.default_rng(0))))
            spec = run.agents.spec(task, 1, 30.0, "run1.0.0")
            # sleep: the modelled runtime on that node (30 core-s on 2 cores at speed 1.5 = 10 s),
            # times the timescale
            assert spec == {"id": "run1.0.0", "cores": 2, "mem_mb": 256, "kind": "sleep",
                            "duration_s": pytest.approx(1.0),
                            "notify_url": "http://127.0.0.1:1/api/v1/task-ended"}
            cpu = _run(tmp_path, 1, LiveOptions(timescale=0.1, task_kind="cpu"), client)
            assert cpu.agents.spec(task, 1, 30.0, "x")["work_core_s"] == pytest.approx(3.0)

    asyncio.run(go())


def test_a_task_started_on_its_agent_and_its_end_reported(tmp_path: Path) -> None:
    async def go() -> None:
        server = TestServer(agent_app(task_config(tmp_path)), host="127.0.0.1")
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with AgentClient(tokens={base: TOKEN}) as client:
                run = _run(tmp_path, server.port, LiveOptions(timescale=0.01), client)
                tasks = list(run.scenario.workload.tasks(np.random.default_rng(0)))
                agents = run.agents
                first = tasks[0]
                agent_id = f"run1.{first.id}.{first.epoch}"
                agents.launch(first, 0, first.work_core_s)
                assert agents.on_agent == {first.id: (0, agent_id)}
                assert run.node_of(agent_id) == run.nodes[0].name
                assert len(run.outbox.held) == 1  # held until the journal is on disk
                await run.outbox.held.pop()
                assert first.id in run.measured_start  # the start the agent measured, journalled
                run.journal.sync()
                assert Journal.read(run.journal.path)[-1]["started"] == first.id
                for _ in range(100):  # 20 core-s on 2 cores at speed 1.5, at 1/100: ~0.1 s
                    docs = await client.tasks(base)
                    if docs and docs[0]["state"] != "running":
                        break
                    await asyncio.sleep(0.05)
                # a report from another node is not this run's; from the right one it is
                assert not run.report(docs[0], "elsewhere")
                assert run.report(docs[0], run.nodes[0].name)
                [(at, ev)] = _inbox(run)
                assert ev == TaskFinished(first.id) and at == pytest.approx(
                    run.clock.scenario_time(docs[0]["ended_s"]))
                assert run.report(docs[0])  # twice: known, no second event
                assert _inbox(run) == []
                assert not run.report({"id": "other.1.0", "state": "completed"})
                # a start the agent refuses (more cores than it has) fails the task
                big = tasks[1]
                big.cores = 64
                agents.launch(big, 0, big.work_core_s)
                await run.outbox.held.pop()
                [(_, failed)] = _inbox(run)
                assert isinstance(failed, TaskFailed) and failed.task_id == big.id
                assert "start on" in failed.reason
                run.journal.close()
        finally:
            await server.close()

    asyncio.run(go())


def test_the_start_document_of_a_command_task(tmp_path: Path) -> None:
    from rpiaas.model import Task

    async def go() -> None:
        async with AgentClient() as client:
            task = Task(1, 0.0, 2, 256, 30.0, "command", ("./solve", "--n", "4"), (("MODE", "fast"),))
            bare = Task(2, 0.0, 2, 256, 30.0, "command")  # a command kind without a program
            run = _run(tmp_path, 1, LiveOptions(timescale=0.1, task_kind="scenario"), client)
            spec = run.agents.spec(task, 1, 30.0, "x")
            assert {k: spec[k] for k in ("kind", "argv", "env", "cores")} == {
                "kind": "command", "argv": ["./solve", "--n", "4"], "env": {"MODE": "fast"}, "cores": 2}
            assert "duration_s" not in spec and "work_core_s" not in spec  # it runs as long as it runs
            assert run.agents.spec(bare, 1, 30.0, "y")["kind"] == "cpu"
            # a run-wide kind models every task, programs too
            sleep = _run(tmp_path, 1, LiveOptions(timescale=0.1), client)
            assert sleep.agents.spec(task, 1, 30.0, "z")["kind"] == "sleep"

    asyncio.run(go())


def test_the_start_document_of_a_container_task(tmp_path: Path) -> None:
    from rpiaas.model import Task

    async def go() -> None:
        async with AgentClient() as client:
            task = Task(1, 0.0, 2, 256, 30.0, "container", ("./solve", "--n", "4"), (("MODE", "fast"),),
                        image="registry.lab.test:5000/solver:1.4", network=True)
            image_only = Task(2, 0.0, 1, 64, 30.0, "container", image="localhost/rpiaas/busybox:latest")
            run = _run(tmp_path, 1, LiveOptions(timescale=0.1, task_kind="scenario"), client)
            spec = run.agents.spec(task, 1, 30.0, "x")
            assert {k: spec[k] for k in ("kind", "image", "argv", "env", "network", "cores", "mem_mb")} == {
                "kind": "container", "image": "registry.lab.test:5000/solver:1.4", "argv": ["./solve", "--n", "4"],
                "env": {"MODE": "fast"}, "network": True, "cores": 2, "mem_mb": 256}
            assert spec["work_core_s"] == pytest.approx(3.0) and "duration_s" not in spec
            plain = run.agents.spec(image_only, 1, 30.0, "y")
            assert plain["kind"] == "container" and plain["network"] is False
            assert "argv" not in plain and "env" not in plain  # the image's own program
            # a run-wide kind models every task, containers too
            cpu = _run(tmp_path, 1, LiveOptions(timescale=0.1, task_kind="cpu"), client)
            assert cpu.agents.spec(task, 1, 30.0, "z")["kind"] == "cpu"

    asyncio.run(go())


@pytest.mark.parametrize(("doc", "reason"), [
    ({"state": "failed", "exit_status": 3, "error": "exit status 3"}, "exit status 3"),
    ({"state": "failed", "exit_status": -9, "error": "killed by SIGKILL"}, "signal 9"),
    ({"state": "failed", "exit_status": 137, "error": "killed by SIGKILL"}, "signal 9"),
    ({"state": "failed", "exit_status": 127, "error": "x"}, "exit status 127 (the command cannot be run)"),
    ({"state": "killed", "exit_status": 143, "error": "the agent stopped"}, "the agent stopped"),
    ({"state": "failed", "exit_status": None, "error": "reaped elsewhere"}, "reaped elsewhere"),
    ({"state": "failed"}, "failed without an exit status"),
    # its memory limit killed it (the agent's cgroup saw the OOM kill)
    ({"state": "failed", "exit_status": -9, "reason": "oom", "error": "killed by its memory limit"}, "oom"),
    ({"state": "killed", "exit_status": -9, "reason": "oom", "error": "killed on request"}, "killed on request"),
    ({"kind": "container", "state": "failed", "exit_status": 137, "reason": "oom",
      "error": "killed by its memory limit (oom)"}, "oom"),
    ({"kind": "container", "state": "failed", "exit_status": 137, "error": "killed by SIGKILL"}, "signal 9"),
    ({"kind": "container", "state": "failed", "exit_status": 3, "error": "exit status 3"}, "exit status 3"),
    ({"kind": "container", "state": "failed", "exit_status": None, "error": "cannot pull x: no such host"},
     "cannot pull x: no such host"),
])
def test_the_reason_of_a_task_that_did_not_complete(doc: dict[str, Any], reason: str) -> None:
    from rpiaas.live.agent_tasks import end_reason

    assert end_reason(doc) == reason


def test_measured_use_is_kept_over_a_resume() -> None:
    from rpiaas.live.resume import replay

    measured_start: dict[int, float] = {}
    used: dict[int, tuple[float | None, float | None]] = {}
    steps: list[float] = []
    replay([{"started": 4, "t": 1.5}, {"used": 4, "cpu_s": 0.75, "peak_mem_mb": 12.5},
            {"used": 5, "cpu_s": None, "peak_mem_mb": None}, {"t": 2.0, "ev": []}],
           iter(()), lambda t, events, util: steps.append(t), measured_start, [True], used)
    assert measured_start == {4: 1.5} and steps == [2.0]
    assert used == {4: (0.75, 12.5), 5: (None, None)}


def test_a_measured_pull_is_kept_over_a_resume_and_only_a_plausible_one() -> None:
    from rpiaas.live.resume import replay
    from rpiaas.live.shell import _measured_pull_s

    pulls: dict[int, float] = {}
    replay([{"used": 4, "cpu_s": 0.75, "peak_mem_mb": 12.5, "pull_s": 3.25}, {"used": 5, "cpu_s": None}],
           iter(()), lambda t, events, util: None, {}, [True], {}, None, pulls)
    assert pulls == {4: 3.25}
    assert _measured_pull_s({"pull_s": 2}) == 2.0 and _measured_pull_s({"pull_s": 0.0}) == 0.0
    for bad in ({}, {"pull_s": None}, {"pull_s": True}, {"pull_s": -1}, {"pull_s": "3"}, {"pull_s": 1e9},
                {"pull_s": float("nan")}):
        assert _measured_pull_s(bad) is None, bad


def test_a_poll_asks_at_most_max_asked_nodes_in_turn(tmp_path: Path) -> None:
    """250 nodes with tasks: each poll asks 100 of them, the next 100 after, every node in turn."""
    from rpiaas.live.agent_tasks import MAX_ASKED, AgentTasks
    from rpiaas.live.clock import RunClock
    from rpiaas.model import Node

    class Asked(AgentClient):
        """The real client, noting whom it asks."""

        asked: list[str]

        async def tasks(self, base_url: str) -> list[dict[str, Any]]:
            self.asked.append(base_url)
            return await super().tasks(base_url)

    sc = scenario({"name": "t", "cluster": cluster(250), "workload": {"tasks": TASKS},
                   "policy": "first_fit"})
    nodes: list[Node] = list(sc.cluster.nodes)
    dead = free_port()  # nothing listens: every ask fails at once, as a node down would
    entries = [NodeEntry(n, f"127.0.0.{1 + i}", dead) for i, n in enumerate(nodes)]  # 250 URLs

    async def go() -> list[list[str]]:
        rounds = []
        client = Asked(timeout_s=2.0)
        async with client:
            client.asked = []
            tasks = AgentTasks("run1", entries, nodes, client, LiveOptions(), None, RunClock(1.0),
                               lambda call: None, lambda at, ev: None, lambda i, doc: None,
                               lambda doc, name: None, lambda node, at, why: None)
            tasks.on_agent = {i: (i, f"run1.{i}.0") for i in range(len(nodes))}
            for _ in range(3):
                client.asked = []
                await tasks.poll()
                rounds.append(list(client.asked))
        return rounds

    rounds = asyncio.run(go())
    urls = [e.base_url for e in entries]
    assert len(set(urls)) == 250
    assert MAX_ASKED == 100 and [len(r) for r in rounds] == [100, 100, 100]
    assert rounds[0] == urls[:100] and rounds[1] == urls[100:200]
    assert rounds[2] == urls[200:] + urls[:50]  # the turn goes round
