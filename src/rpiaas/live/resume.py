"""Taking a live run up again after its master died: replay the journal, then ask the agents.

The control plane is deterministic, so a fresh one fed the run's journal
(:mod:`.journal`) reaches the exact state of the one that died
(:func:`replay`); while it is fed, the shell sends nothing to any agent.
Then each agent is asked about the tasks the control plane believes running
(:func:`reconcile`): those that ended meanwhile are collected, those whose
start never reached the agent are started now, and those still running are
watched again.  No task is lost or started twice.  A parallel job is taken up part by
part: each part's start and use come back from the journal, each of its parts is asked
for, a part whose start never reached its agent is started now, and the parts that ended
meanwhile are collected (the job ends with its last, or fails with its first failure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..core.events import Event, NodeDown, NodeUp, TaskFailed
from ..model import Task
from .agent_client import AgentError
from .agent_tasks import AgentTasks
from .jobs import LiveJobs
from .journal import event_from
from .outbox import Call

__all__ = ["reconcile", "replay"]

Step = Callable[[float, list[Event], dict[int, float]], object]


def replay(records: Iterable[dict[str, Any]], tasks: Iterator[Task], step: Step,
           measured_start: dict[int, float], online: list[bool],
           measured_use: dict[int, tuple[float | None, float | None]] | None = None,
           jobs: LiveJobs | None = None, measured_pull: dict[int, float] | None = None) -> None:
    """Feed the journal's ``records`` (after its head) to ``step``, in order.

    :param tasks: the run's workload, drawn again from its seed (arrivals take the next).
    :param step: steps the control plane at a time with events and measured utilisation.
    :param measured_start: receives the measured starts the journal kept, by task id.
    :param online: each node's state as the journal leaves it (what the poller is compared with).
    :param measured_use: receives the CPU seconds and peak memory the journal kept, by task id.
    :param jobs: receives what the parts of parallel jobs measured (records with a ``rank``).
    :param measured_pull: receives the image pulls the journal kept (seconds), by task id.
    """
    for rec in records:
        if "started" in rec:
            task_id, at = int(rec["started"]), float(rec["t"])
            if jobs is not None and "rank" in rec:
                at = jobs.started(task_id, int(rec["rank"]), at)
            measured_start[task_id] = at
            continue
        if "used" in rec:
            if measured_use is not None:
                cpu, peak = rec.get("cpu_s"), rec.get("peak_mem_mb")
                used = (None if cpu is None else float(cpu), None if peak is None else float(peak))
                if jobs is not None and "rank" in rec:
                    used = jobs.used(int(rec["used"]), int(rec["rank"]), used)
                measured_use[int(rec["used"])] = used
            if measured_pull is not None and rec.get("pull_s") is not None:
                measured_pull[int(rec["used"])] = float(rec["pull_s"])
            continue
        events = [event_from(e, tasks) for e in rec["ev"]]
        for ev in events:
            if isinstance(ev, NodeDown):
                online[ev.node] = False
            elif isinstance(ev, NodeUp):
                online[ev.node] = True
        util = {int(i): float(u) for i, u in rec.get("u", ())}
        step(float(rec["t"]), events, util)


async def reconcile(running: Iterable[Task], agents: AgentTasks, now: float,
                    report: Callable[[dict[str, Any], str], object],
                    started: Callable[[int, dict[str, Any]], None],
                    spawn: Callable[[Call], None], put: Callable[[float, Event], None]) -> None:
    """The tasks the control plane believes ``running``, against their agents.

    :param report: takes the document of a task that ended meanwhile, and its node's name.
    :param started: takes a running task's id and its document (the start it measured).
    :param spawn: runs a start now (it is in the journal already).
    :param put: takes an event for the control plane (a task whose agent cannot be reached).
    """
    for task in running:
        parts = agents.parts.get(task.id)
        for node, agent_id in parts if parts is not None else (agents.on_agent[task.id],):
            if not agents.current(task.id, agent_id):
                break  # (a job that failed meanwhile: its other parts are stopped)
            try:
                doc = await agents.ask(node, agent_id)
            except AgentError as e:
                agents.reported.add(agent_id)
                if agents.settle(task.id):
                    put(now, TaskFailed(task.id, f"agent unreachable on resume: {e}"))
                continue
            if doc is None:  # the start never reached it: start it now
                spec = agents.part_specs[agent_id] if parts is not None else \
                    agents.spec(task, node, task.work_core_s, agent_id)
                spawn(agents.post(task.id, node, spec))
            elif doc.get("state") != "running":
                report(doc, agents.entries[node].name)
            else:
                started(task.id, doc)
