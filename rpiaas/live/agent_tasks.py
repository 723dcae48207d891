"""A live run's tasks on the agents: their ids, starts, kills and reported ends.

A task attempt runs on its node's agent as ``RUN.TASK.EPOCH``, so a start is
never done twice: a start the agent already has answers 409 and is watched
like any other.  A task runs as ``sleep`` for its modelled runtime on that
node (``work_core_s / (cores * speed)``, times the timescale: exact, so runs
can be compared with the simulation) or as ``cpu`` doing its real work.
Ends come pushed by the agents (:meth:`AgentTasks.report`) and are also
found by polling the agents' ``GET /tasks`` (:meth:`AgentTasks.poll`), so a
lost push loses nothing; the event is stamped with the end the agent measured.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..core.events import TaskFailed, TaskFinished
from ..model import Task
from .agent_client import AgentError

if TYPE_CHECKING:
    from .shell import LiveRun

__all__ = ["AgentTasks", "agent_kind"]


def agent_kind(task_kind: str, kind: str) -> str:
    """What a task of scenario ``kind`` runs as on its agent in a run of ``task_kind``:
    ``sleep`` (its modelled runtime) or ``cpu`` (its work, for real)."""
    if task_kind == "scenario":
        return "sleep" if kind == "sleep" else "cpu"
    return task_kind


class AgentTasks:
    """The tasks of ``run`` on its agents, and the starts the agents measured.

    :param run: the live run whose tasks these are (its agents, client, clock and journal).
    """

    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.ids: dict[str, int] = {}  # agent task id -> task id
        self.on_agent: dict[int, tuple[int, str]] = {}  # running task id -> (node, agent id)
        self.reported: set[str] = set()  # agent ids whose end is known (or no longer wanted)
        self.measured_start: dict[int, float] = {}  # task id -> measured start, scenario s

    def spec(self, task: Task, node: int, work_core_s: float, agent_id: str) -> dict[str, Any]:
        """The ``POST /tasks`` document that runs ``work_core_s`` of ``task`` on ``node``."""
        run = self.run
        spec: dict[str, Any] = {"id": agent_id, "cores": task.cores, "mem_mb": task.mem_mb}
        scale = run.options.timescale
        if agent_kind(run.options.task_kind, task.kind) == "sleep":
            kind = run.nodes[node].type  # the modelled runtime, as the simulator has it
            runtime = kind.start_overhead_s + work_core_s / (task.cores * kind.speed)
            spec.update(kind="sleep", duration_s=max(runtime * scale, 1e-3))
        else:
            spec.update(kind="cpu", work_core_s=max(work_core_s * scale, 1e-3))
        if run.notify_url:
            spec["notify_url"] = run.notify_url
        return spec

    def launch(self, task: Task, node: int, work_core_s: float) -> None:
        """Start ``work_core_s`` of ``task`` on ``node``'s agent (once the journal is on disk)."""
        run = self.run
        agent_id = f"{run.id}.{task.id}.{task.epoch}"
        self.ids[agent_id] = task.id
        self.on_agent[task.id] = (node, agent_id)
        if run.replaying:
            return  # reconciled with the agent by the resume
        spec = self.spec(task, node, work_core_s, agent_id)
        run.act(self.post(task.id, node, spec))

    async def post(self, task_id: int, node: int, spec: dict[str, Any]) -> None:
        """Start the task of ``spec`` on ``node``'s agent; a refusal fails the task."""
        run = self.run
        entry = run.entries[node]
        try:
            doc = await run.client.start_task(entry.base_url, spec)
        except AgentError as e:
            if e.status == 409 and "exists" in str(e).lower():
                return  # started before (a resumed run): watched like any other
            if self.on_agent.get(task_id, (0, ""))[1] == spec["id"]:
                self.reported.add(spec["id"])
                run.put(run.now(), TaskFailed(task_id, f"start on {entry.name}: {e}"))
            return
        self.learn_start(task_id, doc)

    def learn_start(self, task_id: int, doc: dict[str, Any]) -> None:
        """Keep the start the agent measured (from its answer to the start, or any later
        document of the task: a resumed master may have lost the first)."""
        started = doc.get("started_s")
        if isinstance(started, (int, float)) and task_id not in self.measured_start:
            at = self.run.scenario_time(self.local_time(task_id, float(started)))
            self.measured_start[task_id] = at
            self.run.journal.write({"started": task_id, "agent_id": doc.get("id"), "t": at})

    def local_time(self, task_id: int, node_time_s: float) -> float:
        """A time the agent running ``task_id`` read on its node's clock, on the master's.

        A node's wall clock may be off (a Pi has no battery-backed clock, a VM
        starts from its host's clock to the second): the master's poller keeps
        each node's offset, taken out here, so a task's start and end are where
        they were on one clock.
        """
        current = self.on_agent.get(task_id)
        if current is None:
            return node_time_s
        return self.run.entries[current[0]].node_to_local(node_time_s)

    def stop(self, task_id: int) -> None:
        """Stop the task on its agent (if it runs there); its end is no longer an event."""
        current = self.on_agent.pop(task_id, None)
        run = self.run
        if current is None or run.replaying:
            return
        node, agent_id = current
        self.reported.add(agent_id)

        async def kill() -> None:
            with contextlib.suppress(AgentError):
                await run.client.kill_task(run.entries[node].base_url, agent_id)

        run.act(kill())

    async def poll(self) -> None:
        """Ask the agents that run this run's tasks for their tasks: the ends pushes missed."""
        run = self.run
        nodes = sorted({node for node, _ in self.on_agent.values()})
        results = await asyncio.gather(
            *(run.client.tasks(run.entries[n].base_url) for n in nodes), return_exceptions=True)
        for n, docs in zip(nodes, results, strict=True):
            if isinstance(docs, BaseException):
                continue  # the node's own poll decides whether it is down
            for doc in docs:
                if doc.get("state") != "running":
                    self.report(doc, run.entries[n].name)

    def node_of(self, agent_id: object) -> str | None:
        """The node that runs this run's task with ``agent_id`` now, or None."""
        task_id = self.ids.get(agent_id) if isinstance(agent_id, str) else None
        current = self.on_agent.get(task_id) if task_id is not None else None
        return self.run.entries[current[0]].name if current and current[1] == agent_id else None

    def report(self, doc: dict[str, Any], node: str | None = None) -> bool:
        """An agent's task document (pushed or polled): its end becomes an event.

        Returns whether the document belonged to this run; with ``node`` (the
        node that sent it), a document of a task running on another node does not.
        """
        agent_id = doc.get("id")
        if not isinstance(agent_id, str) or agent_id not in self.ids:
            return False
        if node is not None and self.node_of(agent_id) not in (None, node):
            return False
        state = doc.get("state")
        if state == "running" or agent_id in self.reported:
            return True
        task_id = self.ids[agent_id]
        current = self.on_agent.get(task_id)
        if current is None or current[1] != agent_id:
            return True  # killed or moved by us: the control plane already knows
        self.learn_start(task_id, doc)
        self.reported.add(agent_id)
        run = self.run
        ended = doc.get("ended_s")
        at = run.scenario_time(self.local_time(task_id, float(ended))) \
            if isinstance(ended, (int, float)) else run.now()
        if state == "completed":
            run.put(at, TaskFinished(task_id))
        else:
            reason = doc.get("error") or f"{state} with exit status {doc.get('exit_status')}"
            run.put(at, TaskFailed(task_id, str(reason)))
        return True
