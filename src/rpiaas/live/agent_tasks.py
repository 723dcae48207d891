"""A live run's tasks on the agents: their ids, starts, kills and polls.

A task attempt runs on its node's agent as ``RUN.TASK.EPOCH``, so a start is
never done twice: a start the agent already has answers 409 and is watched
like any other.  A task runs as ``sleep`` for its modelled runtime on that
node (:meth:`NodeType.runtime_s <rpiaas.model.NodeType.runtime_s>`, times the timescale: exact, so runs
can be compared with the simulation), as ``cpu`` doing its real work, or, in a run of
``task_kind`` ``scenario``, a task that carries a ``command`` runs that program (with its
``env``) as the agent's ``command`` kind, if the agent allows commands.  How a task ended
on its agent becomes its ``reason`` (:func:`end_reason`).
The documents the agents answer go back to the run through the callables it
gives: the start an agent measured (``started``) and, found by polling the
agents' ``GET /tasks`` (:meth:`AgentTasks.poll`), the ends their pushes
missed (``ended``), so a lost push loses nothing.

A parallel job (a task over several nodes) runs as one agent task per part,
``RUN.TASK.EPOCH.rRANK`` on the part's node, all started at once (each start its
own call, sent concurrently): a ``sleep`` part sleeps the job's modelled runtime
(:func:`~rpiaas.model.job_runtime_s`, its slowest part's), a ``cpu`` part does its
share of the job's work (the work split over the job's cores, times its own cores), a
``command`` part runs the job's program with ``RPIAAS_JOB`` (the task id),
``RPIAAS_RANK`` (the part's rank, from 0) and ``RPIAAS_NODES`` (the job's nodes,
rank by rank, as ``name=address`` separated by commas) added to its ``env``.
Stopping a job stops each of its parts whose end is not known.

A start that never reached its agent is not the task's failure.  When no
connection could be made (refused, reset or timed out while connecting: the
agent cannot have seen the request), the attempt becomes ``TaskNotStarted`` (the
task waits again without spending a retry) and the node ``NodeDown`` with the
reason, in one batch, once every other start to that node under way has
answered (so all the starts a dead node swallowed go back together).  When the
request was sent and its answer lost (a read timeout, a connection broken after
sending), the agent is asked for the task (``GET /tasks/{id}``): if it has it, the
attempt started and is watched like any other; if it answers that it has not,
the attempt never happened (``TaskNotStarted``; the node stays up); if it does not
answer, the node is down and the attempt, which may have started, is lost with
it as any running task is (a retry spent).  An attempt the run gave up that an
agent turns out to run (its late start) is stopped when the agents are polled.

A poll asks at most
:data:`MAX_ASKED` nodes, in turn: on a thousand busy nodes each is asked every
ten polls, not all a thousand every second (the pushes are the way ends
arrive; the poll only catches those lost, and an agent retries its pushes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..core.events import Event, TaskFailed, TaskNotStarted
from ..model import Node, Task, job_cores, job_runtime_s, part_cores
from .agent_client import AgentClient, AgentError
from .clock import RunClock
from .options import AgentNode, LiveOptions
from .outbox import Call

__all__ = ["MAX_ASKED", "AgentTasks", "agent_kind", "end_reason"]

_EXIT_CANNOT_RUN, _EXIT_SIGNAL = 127, 128  # the agent's worker's exit statuses (its workload.py)
MAX_ASKED = 100  # nodes asked for their tasks by one poll, in turn


def agent_kind(task_kind: str, kind: str, has_command: bool = False) -> str:
    """What a task of scenario ``kind`` runs as on its agent in a run of ``task_kind``:
    ``sleep`` (its modelled runtime), ``cpu`` (its work, for real) or, in a ``scenario``
    run, ``command`` (its program) for a task that carries one, ``container`` (its image)."""
    if task_kind == "scenario":
        if kind == "command" and has_command:
            return "command"
        if kind == "container":
            return "container"
        return "sleep" if kind == "sleep" else "cpu"
    return task_kind


def end_reason(doc: dict[str, Any]) -> str:
    """Why a task failed or was killed on its agent, from its final document: ``exit status
    3``, ``signal 9`` (the task's process, or the command it ran, died of that signal),
    ``exit status 127 (the command cannot be run)``, or for a task the agent killed its
    error (``killed on request``, ``the agent stopped``); ``oom`` for one its memory limit
    killed (the agent's ``reason``); for a container that never ran, its agent's error
    (``cannot pull IMAGE: ...``)."""
    code, state = doc.get("exit_status"), doc.get("state")
    if state == "killed" and doc.get("error"):
        return str(doc["error"])
    if state == "failed" and doc.get("reason") == "oom":
        return "oom"
    if code is None and doc.get("error"):
        return str(doc["error"])
    if isinstance(code, int) and not isinstance(code, bool):
        if code < 0:
            return f"signal {-code}"
        if code > _EXIT_SIGNAL:
            return f"signal {code - _EXIT_SIGNAL}"
        if code == _EXIT_CANNOT_RUN:
            return f"exit status {code} (the command cannot be run)"
        return f"exit status {code}"
    return str(doc.get("error") or f"{state} without an exit status")


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
    :param unreachable: takes a node whose agent could not be reached, a scenario time and
        the reason: the node is down from then on (:meth:`NodeWatch.unreachable
        <rpiaas.live.watch.NodeWatch.unreachable>`).
    """

    def __init__(self, run_id: str, entries: Sequence[AgentNode], nodes: Sequence[Node],
                 client: AgentClient, options: LiveOptions, notify_url: str | None,
                 clock: RunClock, act: Callable[[Call], None],
                 put: Callable[[float, Event], None],
                 started: Callable[[int, dict[str, Any]], None],
                 ended: Callable[[dict[str, Any], str], object],
                 unreachable: Callable[[int, float, str], None]) -> None:
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
        self.unreachable = unreachable
        self.ids: dict[str, int] = {}  # agent task id -> task id
        self.on_agent: dict[int, tuple[int, str]] = {}  # running task id -> (node, agent id)
        # running job (a task over several nodes) -> its parts' (node, agent id), rank by rank;
        # its ``on_agent`` entry is its first part's
        self.parts: dict[int, tuple[tuple[int, str], ...]] = {}
        self.rank: dict[str, int] = {}  # a job's part's agent id -> its rank
        self.part_specs: dict[str, dict[str, Any]] = {}  # a running part's start document (resume)
        self.settled: set[str] = set()  # job attempts (their first part's agent id) whose end is an event
        self.placed_s: dict[int, float] = {}  # running task id -> when its attempt was placed (scenario s)
        self.reported: set[str] = set()  # agent ids whose end is known (or no longer wanted)
        self.replaying = False  # the run replays its journal: no call goes out
        self.starting: dict[int, int] = {}  # node -> starts under way to it
        # node -> (task id, agent id, reason) of the starts that could not reach it, until
        # the node's other starts under way have answered
        self.unsent: dict[int, list[tuple[int, str, str]]] = {}
        self.ask_from = 0  # where the next poll's turn starts, among the nodes with tasks

    def spec(self, task: Task, node: int, work_core_s: float, agent_id: str) -> dict[str, Any]:
        """The ``POST /tasks`` document that runs ``work_core_s`` of ``task`` on ``node``."""
        spec: dict[str, Any] = {"id": agent_id, "cores": task.cores, "mem_mb": task.mem_mb}
        scale = self.options.timescale
        kind = agent_kind(self.options.task_kind, task.kind, task.command is not None)
        if kind == "sleep":
            runtime = self.nodes[node].type.runtime_s(work_core_s, task.cores)  # as simulated
            spec.update(kind="sleep", duration_s=max(runtime * scale, 1e-3))
        elif kind == "command" and task.command is not None:
            spec.update(kind="command", argv=list(task.command))  # runs as long as it runs
            if task.env:
                spec["env"] = dict(task.env)
        elif kind == "container":  # runs as long as its image's program runs
            spec.update(kind="container", image=task.image, network=bool(task.network),
                        work_core_s=max(work_core_s * scale, 1e-3))
            if task.command is not None:
                spec["argv"] = list(task.command)
            if task.env:
                spec["env"] = dict(task.env)
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
        self.placed_s[task.id] = task.start_s  # (a migrated task's first start: earlier still)
        if self.replaying:
            return  # reconciled with the agent by the resume
        self.act(self.post(task.id, node, self.spec(task, node, work_core_s, agent_id)))

    def launch_job(self, task: Task) -> None:
        """Start every part of the parallel job ``task`` on its node (``task.placed``), each
        start its own call, all sent at once when the journal is on disk."""
        names = ",".join(f"{self.entries[n].name}={urlsplit(self.entries[n].base_url).hostname or ''}"
                         for n in task.placed)
        parts = []
        for rank, (node, cores) in enumerate(zip(task.placed, part_cores(task), strict=True)):
            agent_id = f"{self.run_id}.{task.id}.{task.epoch}.r{rank}"
            self.ids[agent_id] = task.id
            self.rank[agent_id] = rank
            parts.append((node, agent_id))
            self.part_specs[agent_id] = self.part_spec(task, rank, node, cores, names, agent_id)
        self.on_agent[task.id] = parts[0]
        self.parts[task.id] = tuple(parts)
        if self.replaying:
            return  # reconciled with the agents by the resume
        for node, agent_id in parts:
            self.act(self.post(task.id, node, self.part_specs[agent_id]))

    def part_spec(self, task: Task, rank: int, node: int, cores: int, names: str,
                  agent_id: str) -> dict[str, Any]:
        """The ``POST /tasks`` document of part ``rank`` (``cores`` on ``node``) of job ``task``;
        ``names`` is the job's ``RPIAAS_NODES``."""
        share = task.work_core_s * cores / job_cores(task)
        spec = self.spec(task, node, share, agent_id)
        spec["cores"] = cores
        if spec["kind"] == "sleep":  # the job's runtime: its slowest part's
            runtime = job_runtime_s([self.nodes[n].type for n in task.placed], task.work_core_s,
                                    job_cores(task))
            spec["duration_s"] = max(runtime * self.options.timescale, 1e-3)
        elif spec["kind"] in ("command", "container"):
            spec["env"] = {**spec.get("env", {}), "RPIAAS_JOB": str(task.id), "RPIAAS_RANK": str(rank),
                           "RPIAAS_NODES": names}
        return spec

    def settle(self, task_id: int) -> bool:
        """Whether the end of ``task_id``'s attempt may become an event now: always for a task
        on one node; for a job only once (its first part to fail, or its last to end)."""
        parts = self.parts.get(task_id)
        if parts is None:
            return True
        key = parts[0][1]
        if key in self.settled:
            return False
        self.settled.add(key)
        return True

    def where(self, task_id: int, agent_id: str) -> int | None:
        """The node of ``agent_id``, the attempt (or a part of it) of ``task_id`` that the run
        waits for; None if it waits for no such attempt."""
        parts = self.parts.get(task_id)
        if parts is not None:
            rank = self.rank.get(agent_id)
            if rank is not None and rank < len(parts) and parts[rank][1] == agent_id:
                return parts[rank][0]
            return None
        current = self.on_agent.get(task_id)
        return current[0] if current is not None and current[1] == agent_id else None

    async def post(self, task_id: int, node: int, spec: dict[str, Any]) -> None:
        """Start the task of ``spec`` on ``node``'s agent; a refusal fails the task, a start
        that never reached the agent puts it back in the queue (the module's docstring)."""
        self.starting[node] = self.starting.get(node, 0) + 1
        try:
            await self._post(task_id, node, spec)
        finally:
            self.starting[node] -= 1
            if not self.starting[node] and node in self.unsent:
                self._unreached(node)

    def current(self, task_id: int, agent_id: str) -> bool:
        """Whether ``agent_id`` is the attempt of ``task_id`` the run still waits for."""
        return self.where(task_id, agent_id) is not None

    async def _post(self, task_id: int, node: int, spec: dict[str, Any]) -> None:
        entry, agent_id = self.entries[node], spec["id"]
        try:
            doc = await self.client.start_task(entry.base_url, spec)
        except AgentError as e:
            if e.status == 409 and "exists" in str(e).lower():
                return  # started before (a resumed run): watched like any other
            if not self.current(task_id, agent_id):
                return
            why = f"start on {entry.name}: {e}"
            if e.unsent:
                self.unsent.setdefault(node, []).append((task_id, agent_id, why))
            elif e.status is None:
                await self._lost_answer(task_id, node, agent_id, why)
            else:  # the agent answered: it refused
                self.reported.add(agent_id)
                if e.status == 403 and spec["kind"] == "command":
                    why = f"command not allowed on node {entry.name}"
                elif e.status == 403 and spec["kind"] == "container":
                    why = f"containers not available on node {entry.name}"
                if self.settle(task_id):
                    self.put(self.clock.now(), TaskFailed(task_id, why))
            return
        self.started(task_id, doc)

    async def _lost_answer(self, task_id: int, node: int, agent_id: str, why: str) -> None:
        """A start was sent and its answer lost: the agent says whether it has the task."""
        try:
            doc = await self.ask(node, agent_id)
        except AgentError as e:
            if self.current(task_id, agent_id):  # it may run: lost with its node, as started
                self.unreachable(node, self.clock.now(), f"{why}; asked again: {e}")
            return
        if not self.current(task_id, agent_id):
            return
        if doc is None:
            self.reported.add(agent_id)
            if self.settle(task_id):
                self.put(self.clock.now(), TaskNotStarted(task_id, f"{why}; the agent has no such task"))
        else:
            self.started(task_id, doc)  # it started; its end comes as any other's

    def _unreached(self, node: int) -> None:
        """The starts that could not reach ``node``: back in the queue, and the node down, in
        one batch (events of one time are stepped together)."""
        items = [i for i in self.unsent.pop(node) if self.current(i[0], i[1])]
        if not items:
            return  # the node was found down meanwhile: those attempts went with it
        now = self.clock.now()
        for task_id, agent_id, why in items:
            self.reported.add(agent_id)
            if self.settle(task_id):
                self.put(now, TaskNotStarted(task_id, why))
        self.unreachable(node, now, f"unreachable: {items[0][2]}")

    async def ask(self, node: int, agent_id: str) -> dict[str, Any] | None:
        """The document of task ``agent_id`` on ``node``'s agent; None if it has no such task."""
        return await self.client.task(self.entries[node].base_url, agent_id)

    def stop(self, task_id: int) -> None:
        """Stop the task on its agent (if it runs there), or every part of a job whose end is
        not known; its end is no longer an event."""
        current = self.on_agent.pop(task_id, None)
        parts = self.parts.pop(task_id, None)
        if parts is not None:
            for _, agent_id in parts:
                self.part_specs.pop(agent_id, None)
        self.placed_s.pop(task_id, None)
        if current is None or self.replaying:
            return
        for node, agent_id in parts if parts is not None else (current,):
            if parts is not None and agent_id in self.reported:
                continue  # that part ended: nothing to stop
            self.reported.add(agent_id)
            self._kill(node, agent_id)

    def forget(self, task_id: int) -> bool:
        """The run no longer waits for ``task_id`` (it ended, or its start never happened):
        whether it ran on the agents.  A job's parts still running are stopped."""
        if task_id in self.parts:
            self.stop(task_id)
            return True
        return self.on_agent.pop(task_id, None) is not None

    def _kill(self, node: int, agent_id: str) -> None:
        client, base_url = self.client, self.entries[node].base_url

        async def kill() -> None:
            with contextlib.suppress(AgentError):
                await client.kill_task(base_url, agent_id)

        self.act(kill())

    def nodes_running(self) -> set[int]:
        """The nodes that run tasks (or parts of jobs) of this run."""
        nodes = {node for node, _ in self.on_agent.values()}
        for parts in self.parts.values():
            nodes.update(node for node, _ in parts)
        return nodes

    async def poll(self) -> None:
        """Ask the agents that run this run's tasks for their tasks: the ends pushes missed.
        An attempt the run no longer waits for that still runs (a start that reached its
        agent late) is stopped."""
        nodes = sorted(self.nodes_running())
        if len(nodes) > MAX_ASKED:
            start = self.ask_from % len(nodes)
            nodes = (nodes[start:] + nodes[:start])[:MAX_ASKED]
            self.ask_from = start + MAX_ASKED
        results = await asyncio.gather(
            *(self.client.tasks(self.entries[n].base_url) for n in nodes), return_exceptions=True)
        stale: list[tuple[int, str]] = []
        for n, docs in zip(nodes, results, strict=True):
            if isinstance(docs, BaseException):
                continue  # the node's own poll decides whether it is down
            for doc in docs:
                if doc.get("state") != "running":
                    self.ended(doc, self.entries[n].name)
                elif self._stale(doc.get("id")):
                    stale.append((n, str(doc["id"])))
        # (not through the journal: the journal says already that the run gave them up)
        await asyncio.gather(*(self.client.kill_task(self.entries[n].base_url, agent_id)
                               for n, agent_id in stale), return_exceptions=True)

    def _stale(self, agent_id: object) -> bool:
        """Whether ``agent_id`` is an attempt of this run that it no longer waits for."""
        task_id = self.ids.get(agent_id) if isinstance(agent_id, str) else None
        return task_id is not None and not self.current(task_id, str(agent_id))
