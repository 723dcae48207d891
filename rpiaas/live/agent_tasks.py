"""A live run's tasks on the agents: their ids, starts, kills and polls.

A task attempt runs on its node's agent as ``RUN.TASK.EPOCH``, so a start is
never done twice: a start the agent already has answers 409 and is watched
like any other.  A task runs as ``sleep`` for its modelled runtime on that
node (:meth:`NodeType.runtime_s <rpiaas.model.NodeType.runtime_s>`, times the timescale: exact, so runs
can be compared with the simulation) or as ``cpu`` doing its real work.
The documents the agents answer go back to the run through the callables it
gives: the start an agent measured (``started``) and, found by polling the
agents' ``GET /tasks`` (:meth:`AgentTasks.poll`), the ends their pushes
missed (``ended``), so a lost push loses nothing.  A poll asks at most
:data:`MAX_ASKED` nodes, in turn: on a thousand busy nodes each is asked every
ten polls, not all a thousand every second (the pushes are the way ends
arrive; the poll only catches those lost, and an agent retries its pushes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from ..core.events import Event, TaskFailed
from ..model import Node, Task
from .agent_client import AgentClient, AgentError
from .clock import RunClock
from .options import AgentNode, LiveOptions
from .outbox import Call

__all__ = ["MAX_ASKED", "AgentTasks", "agent_kind"]

MAX_ASKED = 100  # nodes asked for their tasks by one poll, in turn


def agent_kind(task_kind: str, kind: str) -> str:
    """What a task of scenario ``kind`` runs as on its agent in a run of ``task_kind``:
    ``sleep`` (its modelled runtime) or ``cpu`` (its work, for real)."""
    if task_kind == "scenario":
        return "sleep" if kind == "sleep" else "cpu"
    return task_kind


class AgentTasks:
    """The tasks of run ``run_id`` on its agents.

    :param run_id: the run's id (it prefixes the agent task ids).
    :param entries: the agents of the scenario's nodes, in the nodes' order.
    :param nodes: the scenario's nodes (their types give a ``sleep`` task's runtime).
    :param client: the agent client.
    :param options: the timescale and the task kind.
    :param notify_url: where the agents push task ends (None: polling only).
    :param clock: the run's clock.
    :param act: takes a call to an agent, to go out once the journal is on disk.
    :param put: takes an event for the control plane at a scenario time (a refused start).
    :param started: takes a task id and its agent's document: the start it measured.
    :param ended: takes a polled document of a task no longer running, and its node's name.
    """

    def __init__(self, run_id: str, entries: Sequence[AgentNode], nodes: Sequence[Node],
                 client: AgentClient, options: LiveOptions, notify_url: str | None,
                 clock: RunClock, act: Callable[[Call], None],
                 put: Callable[[float, Event], None],
                 started: Callable[[int, dict[str, Any]], None],
                 ended: Callable[[dict[str, Any], str], object]) -> None:
        self.run_id = run_id
        self.entries = entries
        self.nodes = nodes
        self.client = client
        self.options = options
        self.notify_url = notify_url
        self.clock = clock
        self.act = act
        self.put = put
        self.started = started
        self.ended = ended
        self.ids: dict[str, int] = {}  # agent task id -> task id
        self.on_agent: dict[int, tuple[int, str]] = {}  # running task id -> (node, agent id)
        self.reported: set[str] = set()  # agent ids whose end is known (or no longer wanted)
        self.replaying = False  # the run replays its journal: no call goes out
        self.ask_from = 0  # where the next poll's turn starts, among the nodes with tasks

    def spec(self, task: Task, node: int, work_core_s: float, agent_id: str) -> dict[str, Any]:
        """The ``POST /tasks`` document that runs ``work_core_s`` of ``task`` on ``node``."""
        spec: dict[str, Any] = {"id": agent_id, "cores": task.cores, "mem_mb": task.mem_mb}
        scale = self.options.timescale
        if agent_kind(self.options.task_kind, task.kind) == "sleep":
            runtime = self.nodes[node].type.runtime_s(work_core_s, task.cores)  # as simulated
            spec.update(kind="sleep", duration_s=max(runtime * scale, 1e-3))
        else:
            spec.update(kind="cpu", work_core_s=max(work_core_s * scale, 1e-3))
        if self.notify_url:
            spec["notify_url"] = self.notify_url
        return spec

    def launch(self, task: Task, node: int, work_core_s: float) -> None:
        """Start ``work_core_s`` of ``task`` on ``node``'s agent (once the journal is on disk)."""
        agent_id = f"{self.run_id}.{task.id}.{task.epoch}"
        self.ids[agent_id] = task.id
        self.on_agent[task.id] = (node, agent_id)
        if self.replaying:
            return  # reconciled with the agent by the resume
        self.act(self.post(task.id, node, self.spec(task, node, work_core_s, agent_id)))

    async def post(self, task_id: int, node: int, spec: dict[str, Any]) -> None:
        """Start the task of ``spec`` on ``node``'s agent; a refusal fails the task."""
        entry = self.entries[node]
        try:
            doc = await self.client.start_task(entry.base_url, spec)
        except AgentError as e:
            if e.status == 409 and "exists" in str(e).lower():
                return  # started before (a resumed run): watched like any other
            if self.on_agent.get(task_id, (0, ""))[1] == spec["id"]:
                self.reported.add(spec["id"])
                self.put(self.clock.now(), TaskFailed(task_id, f"start on {entry.name}: {e}"))
            return
        self.started(task_id, doc)

    async def ask(self, node: int, agent_id: str) -> dict[str, Any] | None:
        """The document of task ``agent_id`` on ``node``'s agent; None if it has no such task."""
        return await self.client.task(self.entries[node].base_url, agent_id)

    def stop(self, task_id: int) -> None:
        """Stop the task on its agent (if it runs there); its end is no longer an event."""
        current = self.on_agent.pop(task_id, None)
        if current is None or self.replaying:
            return
        node, agent_id = current
        self.reported.add(agent_id)
        client, base_url = self.client, self.entries[node].base_url

        async def kill() -> None:
            with contextlib.suppress(AgentError):
                await client.kill_task(base_url, agent_id)

        self.act(kill())

    async def poll(self) -> None:
        """Ask the agents that run this run's tasks for their tasks: the ends pushes missed."""
        nodes = sorted({node for node, _ in self.on_agent.values()})
        if len(nodes) > MAX_ASKED:
            start = self.ask_from % len(nodes)
            nodes = (nodes[start:] + nodes[:start])[:MAX_ASKED]
            self.ask_from = start + MAX_ASKED
        results = await asyncio.gather(
            *(self.client.tasks(self.entries[n].base_url) for n in nodes), return_exceptions=True)
        for n, docs in zip(nodes, results, strict=True):
            if isinstance(docs, BaseException):
                continue  # the node's own poll decides whether it is down
            for doc in docs:
                if doc.get("state") != "running":
                    self.ended(doc, self.entries[n].name)
