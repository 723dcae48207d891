"""Taking a live run up again after its master died: replay the journal, then ask the agents.

The control plane is deterministic, so a fresh one fed the run's journal
(:mod:`.journal`) reaches the exact state of the one that died; while it is
fed, the shell sends nothing to any agent.  Then each agent is asked about
the tasks the control plane believes running: those that ended meanwhile
are collected, those whose start never reached the agent are started now,
and those still running are watched again.  No task is lost or started twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..core.events import NodeBooted, NodeDown, NodeUp, TaskFailed, Tick
from ..model import PowerState
from .agent_client import AgentError
from .journal import event_from

if TYPE_CHECKING:
    from .shell import LiveRun

__all__ = ["resume"]

log = logging.getLogger(__name__)


async def resume(run: LiveRun, records: list[dict[str, Any]]) -> None:
    """Bring ``run`` to where its journal ``records`` (head first) left it, and reconcile."""
    head = records[0]
    run.t0 = float(head["t0"])
    log.info("run %s: resuming from %d journal records", run.id, len(records) - 1)
    _replay(run, records[1:])
    await _reconcile(run)


def _replay(run: LiveRun, records: list[dict[str, Any]]) -> None:
    agents = run.agents
    run.replaying = True
    try:
        for rec in records:
            if "started" in rec:
                agents.measured_start[int(rec["started"])] = float(rec["t"])
                continue
            events = [event_from(e, run.tasks) for e in rec["ev"]]
            for ev in events:  # the nodes' states the watch compares the poller's with
                if isinstance(ev, NodeDown):
                    run.online[ev.node] = False
                elif isinstance(ev, NodeUp):
                    run.online[ev.node] = True
            util = {int(i): float(u) for i, u in rec.get("u", ())}
            run.step(float(rec["t"]), events, util)
    finally:
        run.replaying = False


async def _reconcile(run: LiveRun) -> None:
    """The tasks the control plane believes running, against their agents; then the timers."""
    # (the arrival feed goes on from the task after the last one the journal saw)
    agents = run.agents
    now = run.now()
    for task in run.control.running():
        node, agent_id = agents.on_agent[task.id]
        try:
            doc = await run.client.task(run.entries[node].base_url, agent_id)
        except AgentError as e:
            agents.reported.add(agent_id)
            run.put(now, TaskFailed(task.id, f"agent unreachable on resume: {e}"))
            continue
        if doc is None:  # the start never reached it: start it now
            spec = agents.spec(task, node, task.work_core_s, agent_id)
            run.spawn(agents.post(task.id, node, spec))
        elif doc.get("state") != "running":
            agents.report(doc, run.entries[node].name)
        else:
            agents.learn_start(task.id, doc)
    # timers the control plane still waits for
    for i, st in enumerate(run.control.node_states):
        if st == PowerState.BOOTING:
            run.later(now, NodeBooted(i))
    run.put(now, Tick())
