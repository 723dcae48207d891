"""The live shell: a scenario replayed on real agents through the same control plane and policy.

:class:`LiveRun` is the counterpart of :class:`rpiaas.sim.engine.Simulation`:
both extend :class:`rpiaas.core.shell.Shell`.  Time is the wall clock
(:mod:`.clock`): scenario second ``t`` is ``t0 + t * timescale`` unix
seconds, so a timescale of 0.01 replays a scenario 100 times faster.  Events
come from the world instead of a schedule:

- ``TaskArrived`` when a task's (scaled) arrival time comes;
- ``TaskFinished`` / ``TaskFailed`` when an agent reports a task's end
  (:meth:`LiveRun.report`), pushed to the master (``notify_url``) and also
  found by polling the agents' ``GET /tasks`` every poll interval
  (:mod:`.agent_tasks`);
- ``NodeDown`` / ``NodeUp`` when the master's poller sees a node go offline or
  come back (a killed agent takes its tasks with it);
- ``Tick`` at the times the policy asked for (``WakeAt``);
- ``NodeBooted`` when a node switched on by its power driver reports its boot
  (:mod:`.switching`: a ``PowerOff`` switches the node off for real); where
  the master's cluster config gives a node no driver, power is emulated (the
  node stays on) and ``NodeBooted`` comes its type's ``boot_s`` after the
  ``PowerOn``.

Actions are carried out concurrently (:mod:`.agent_tasks`, :mod:`.outbox`):
``Start`` is ``POST /tasks`` on the node's agent, ``Kill`` is ``DELETE``,
``Migrate`` kills and starts the rest of the task on the new node.  Every
batch of events is journalled before the actions it causes go out
(:mod:`.journal`), so a master that dies mid-run takes the run up again
where it was (:mod:`.resume`).

The run directory has the simulation's format with ``mode: live``: a task's
row is written when the control plane hands over the ended task (its start
the one its agent measured), node series with the measured CPU and memory
use (:mod:`.result`), and energy from each node type's power model on the
measured utilisation.  A task's end goes from the agent's push
(:meth:`LiveRun.report`) through the control plane to its row
(:meth:`LiveRun.task_final`) in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.control import ControlPlane
from ..core.energy import NodeUsage
from ..core.events import (
    Action,
    Event,
    Migrate,
    NodeBooted,
    NodeDown,
    PowerOff,
    PowerOn,
    Start,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    TaskNotStarted,
    Tick,
    WakeAt,
)
from ..core.images import ImageCaches
from ..core.shell import Shell
from ..model import PowerState, Task, TaskState, part_cores
from ..power import PowerDriver, PowerError, driver_for
from ..rundir import RunWriter
from ..rundir.fidelity import Outcome, outcome
from ..scenario import Scenario, rng_streams
from ..store import HistoryStore
from .agent_client import AgentClient
from .agent_tasks import AgentTasks, end_reason
from .clock import RunClock
from .hold import RETRY_S, DiskHold, RunSuspended, is_no_space
from .jobs import LiveJobs, spread_figures
from .journal import JOURNAL, Journal, event_json
from .options import RESULT, AgentNode, LiveOptions, RunState, task_runner_of
from .outbox import Outbox
from .push import PushRejected, check_attempt, check_document
from .result import LiveResult, Twin, lag_figures, not_started_figures
from .resume import reconcile, replay
from .switching import PowerSwitch
from .watch import NodeWatch

__all__ = ["LiveRun"]

log = logging.getLogger(__name__)


_MAX_PULL_S = 7 * 86_400.0  # a longer "pull" is no measurement


def _measured_pull_s(doc: dict[str, Any]) -> float | None:
    """The seconds an agent says a container task's image took to pull (``pull_s`` of its task
    document), if it says so with a plausible number; ``None`` otherwise."""
    pull = doc.get("pull_s")
    if isinstance(pull, (int, float)) and not isinstance(pull, bool) and 0 <= pull <= _MAX_PULL_S:
        return float(pull)
    return None


class LiveRun(Shell):
    """One scenario replayed on the testbed; :meth:`run` until it ends.

    :param run_id: the run's name, unique on this master (it prefixes agent task ids).
    :param scenario: what to replay; its nodes are ``entries``, in the same order.
    :param entries: the agents of the scenario's nodes (the master's registry entries).
    :param client: agent client carrying the agents' token.
    :param store: the master's history store (measured node series).
    :param directory: the run's directory on the master: journal and result.
    :param notify_url: where agents push task ends (None: polling only).
    :param clock: the unix time now.
    :param twin: simulates the scenario when the run ends (its summary and each task's
        outcome), for ``fidelity.json``; None: no twin.
    """

    def __init__(self, run_id: str, scenario: Scenario, entries: list[AgentNode],
                 client: AgentClient, store: HistoryStore, directory: Path,
                 options: LiveOptions, notify_url: str | None = None,
                 clock: Callable[[], float] = time.time, twin: Twin | None = None) -> None:
        super().__init__()
        self.id = run_id
        self.scenario = scenario
        self.entries = entries
        self.store = store
        self.directory = directory
        self.options = options
        self.notify_url = notify_url
        self.twin = twin
        self.status = RunState(run_id)
        self.nodes = scenario.cluster.nodes
        self.images: ImageCaches | None = None  # (made with the control plane)
        self.clock = RunClock(options.timescale, clock)
        self.journal = Journal(directory / JOURNAL)  # opened at its first record
        self._inbox: asyncio.Queue[tuple[float, Event] | None] = asyncio.Queue()
        self.outbox = Outbox(run_id, functools.partial(self._inbox.put_nowait, None))
        self.measured_start: dict[int, float] = {}  # task id -> measured start, scenario s
        # task id -> (cpu_s, peak_mem_mb) its agent measured for its last attempt that ended
        self.measured_use: dict[int, tuple[float | None, float | None]] = {}
        # task id -> seconds its image took to pull, as its agent measured (``pull_s``)
        self.measured_pull: dict[int, float] = {}
        self.jobs = LiveJobs()  # what the parts of the parallel jobs running now measured
        self.watch = NodeWatch(entries, self.clock, self.put)
        self.agents = AgentTasks(run_id, entries, self.nodes, client, options, notify_url,
                                 self.clock, self.outbox.hold, self.put, self.learn_start,
                                 self.polled, self.watch.unreachable)
        self.not_started: dict[int, int] = {}  # task id -> its attempts that never started
        self.drivers = _drivers(entries)
        self.power = PowerSwitch(entries, self.drivers, store, self.clock, self.put,
                                 self.outbox.spawn, client.tasks, self._note, self.watch.hold,
                                 self.watch.release)
        self._arrivals_left = True
        self._stop_now = False  # the horizon came
        self._arrived = 0
        self.last_now = 0.0
        self.replaying = False  # feeding the journal to the control plane: nothing goes out
        self.writer: RunWriter | None = None
        self.start_lags: list[float] = []  # measured start - decision, scenario seconds
        self.outcomes: dict[int, Outcome] = {}
        self.names = [n.name for n in self.nodes]
        self._index = {e.name: i for i, e in enumerate(entries)}
        self.result: Path | None = None
        self.hold = DiskHold(options.hold_limit_s)  # held while the journal finds no space

    # ------------------------------------------------------------ the run
    async def run(self) -> Path | None:
        """Replay (or resume) the run; the result directory, or None if cancelled."""
        self.directory.mkdir(parents=True, exist_ok=True)
        streams = rng_streams(self.scenario.seed)
        self.tasks: Iterator[Task] = self.scenario.workload.tasks(streams["workload"])
        self.writer = writer = RunWriter(self.directory / RESULT,
                                         event_log=self.scenario.event_log,
                                         decisions=self.scenario.decision_trace)
        writer.node_names = self.names
        writer.stats.set_nodes(self.nodes)
        self.control = ControlPlane(
            self.nodes, self.scenario.policies(streams["policy"]),
            log=writer.events if self.scenario.event_log else None,
            on_final=self.task_final, retries=self.scenario.retries,
            initial_state=[self.scenario.initial_power] * len(self.nodes),
            trace=writer.decisions, workflow=self.scenario.workflow,
            walltime_kill=self.scenario.walltime == "kill")
        self.usage = NodeUsage(self.control, measured=True)
        self._util = self.control.view.utilization_sink(measured=True)
        # which nodes hold which images, as the run saw them pulled: what the view shows a policy
        self.images = ImageCaches(self.nodes, self.scenario.images) if self.scenario.images else None
        if self.images is not None:
            self.control.view.attach_images(self.images)
        self.output = LiveResult(self.scenario, writer, self.usage, self.control, self.store,
                                 self.clock, self.twin)
        self.output.switching = self.power.switching
        self.output.on_full = self._full
        self.output.boots_measured = self.power.boots  # the same list: filled as the boots come
        records = Journal.read(self.journal.path)
        workers: list[asyncio.Task[None]] = []
        try:
            if records:
                await self._resume(records)
            else:
                await self.power.wake_all()  # nodes an earlier run left off
                self.clock.t0 = self.clock.unix()
                self.journal.write({"run": self.id, "t0": self.clock.t0,
                                    "timescale": self.options.timescale,
                                    "task_kind": self.options.task_kind,
                                    "notify_url": self.notify_url})
                self.journal.sync()
                down = [i for i, up in enumerate(self.watch.online) if not up]
                if down:
                    self.step(0.0, [NodeDown(i, "offline at start") for i in down])
                    self.journal.sync()
                    self.outbox.release()
            workers = [asyncio.create_task(w()) for w in
                       (self._feed_arrivals, self._watch, self.output.loop)]
            if self.scenario.horizon_s is not None:
                workers.append(asyncio.create_task(self._horizon(self.scenario.horizon_s)))
            await self._loop()
            return await self._finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w
            self.hold.stop()
            try:
                self.journal.close()
            except OSError as e:  # a resume goes on from the last record on disk
                if not is_no_space(e):
                    raise
                log.warning("run %s: journal closed short of space: %s", self.id, e)

    async def _resume(self, records: list[dict[str, Any]]) -> None:
        """Bring the run to where its journal ``records`` (head first) left it, and reconcile."""
        self.clock.t0 = float(records[0]["t0"])
        log.info("run %s: resuming from %d journal records", self.id, len(records) - 1)
        self.replaying = self.agents.replaying = True
        try:
            replay(records[1:], self.tasks, self.step, self.measured_start, self.watch.online,
                   self.measured_use, self.jobs, self.measured_pull)
        finally:
            self.replaying = self.agents.replaying = False
        # (the arrival feed goes on from the task after the last one the journal saw)
        now = self.clock.now()
        await reconcile(self.control.running(), self.agents, now, self.polled,
                        self.learn_start, self.outbox.spawn, self.put)
        # timers the control plane still waits for (a node switched on by a driver before
        # the master stopped is taken as booted now: its report may have been missed)
        for deadline in self.control.deadlines():  # walltime kills still to come
            self.later(deadline, Tick())
        for i, st in enumerate(self.control.node_states):
            if st == PowerState.BOOTING:
                self.later(now, NodeBooted(i))
            elif st == PowerState.OFF and self.drivers[i] is not None:
                self.watch.hold(i)
        self.put(now, Tick())

    async def _loop(self) -> None:
        while not self._done():
            item = await self._inbox.get()
            items = [item]
            while not self._inbox.empty():
                items.append(self._inbox.get_nowait())
            if any(i is None for i in items) and self._stop_now:
                return
            events = sorted((i for i in items if i is not None), key=lambda i: i[0])
            k = 0
            while k < len(events):  # one step per distinct time, in time order
                at = events[k][0]
                batch = []
                while k < len(events) and events[k][0] == at:
                    batch.append(events[k][1])
                    k += 1
                self.step(max(at, self.last_now), batch)
            # the journal reaches the disk before the actions of these steps go out; the
            # fsync runs in a thread, so the loop takes in events meanwhile (group commit);
            # a full disk holds them (and the run) until it has room
            if (self.outbox.held or self.hold.active) and await self._sync():
                self.outbox.release()
            self._update_status()

    async def _sync(self) -> bool:
        assert self.writer is not None
        return await self.hold.sync(self.journal, self.last_now, self._note, self._wake,
                                    self.writer.drain)

    def _wake(self) -> None:
        self._inbox.put_nowait(None)

    def _full(self, err: OSError) -> None:
        """A write of the result's tables found no space: held like a journal that finds none."""
        self.hold.fail(err, self.last_now, self._note, self._wake)

    async def _horizon(self, horizon_s: float) -> None:
        await asyncio.sleep(max(0.0, self.clock.wall(horizon_s) - self.clock.unix()))
        self._stop_now = True
        self._inbox.put_nowait(None)

    def _done(self) -> bool:
        """The simulation's end rule: no task to come, waiting or running, no node booting.
        A wake-up the policy asked for does not keep the run going (as in simulation:
        an idle node's switch-off timer after the last task is not part of the run)."""
        c = self.control
        return (not self._arrivals_left and not c.running_count and not c.queue_length
                and not c.booting and not self.outbox.pending)

    def _update_status(self) -> None:
        st, c = self.status, self.control
        st.arrived, st.queued, st.running = self._arrived, c.queue_length, c.running_count
        st.held, st.held_s = self.hold.reason, round(self.hold.for_s, 1)
        st.ended = self.writer.stats.ended if self.writer is not None else 0
        st.now_s = self.last_now

    # ------------------------------------------------------------ events in
    def put(self, at_s: float, ev: Event) -> None:
        """An event for the control plane, at scenario time ``at_s``."""
        self._inbox.put_nowait((at_s, ev))

    async def _feed_arrivals(self) -> None:
        for task in self.tasks:
            delay = self.clock.wall(task.arrival_s) - self.clock.unix()
            if delay > 0:
                await asyncio.sleep(delay)
            self.put(task.arrival_s, TaskArrived(task))
        self._arrivals_left = False
        self._inbox.put_nowait(None)  # wake the loop: it may be done

    async def _watch(self) -> None:
        """Node states and utilisation from the poller, and task ends the pushes missed."""
        interval = self.options.watch_interval_s
        next_poll = 0.0
        while True:
            self.watch.look()
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                await self.agents.poll()
            await asyncio.sleep(min(0.2, interval))

    def node_of(self, agent_id: object) -> str | None:
        """The node that runs this run's task with ``agent_id`` now, or None."""
        agents = self.agents
        task_id = agents.ids.get(agent_id) if isinstance(agent_id, str) else None
        node = agents.where(task_id, str(agent_id)) if task_id is not None else None
        return self.entries[node].name if node is not None else None

    def report(self, doc: dict[str, Any], node: str | None = None) -> bool:
        """An agent's task document (pushed or polled): its end becomes an event.

        Returns whether the document belonged to this run; with ``node`` (the
        node that sent it), a document of a task running on another node does not.
        The event is stamped with the end the agent measured, on the master's clock.
        A document of this run outside the push schema or its attempt raises
        :class:`~rpiaas.live.push.PushRejected`, nothing of it is booked, and
        ``events.jsonl`` has ``{"t", "push": "rejected", "node", "task", "field", "error"}``.
        """
        try:
            return self._report(doc, node)
        except PushRejected as e:
            agent_id = doc["id"]
            self._note(json.dumps({"t": round(self.clock.now(), 6), "push": "rejected",
                                   "node": node or self.node_of(agent_id), "task": self.agents.ids[agent_id],
                                   "field": e.field, "error": e.message}, separators=(",", ":")) + "\n")
            raise

    def _report(self, doc: dict[str, Any], node: str | None) -> bool:
        agents = self.agents
        agent_id = doc.get("id")
        if not isinstance(agent_id, str) or agent_id not in agents.ids:
            return False
        if node is not None and self.node_of(agent_id) not in (None, node):
            return False
        doc = check_document(doc)
        state = doc.get("state")
        if state == "running" or agent_id in agents.reported:
            return True
        task_id = agents.ids[agent_id]
        where = agents.where(task_id, agent_id)
        if where is None:
            return True  # killed or moved by us: the control plane already knows
        entry = self.entries[where]
        check_attempt(doc, self.clock.wall(agents.placed_s.get(task_id, 0.0)), self.clock.unix(),
                      entry.node_to_local, self.nodes[where].type.cores)
        agents.placed_s.pop(task_id, None)
        self.learn_start(task_id, doc)
        self.learn_use(task_id, doc)
        agents.reported.add(agent_id)
        ended = doc.get("ended_s")
        at = self.clock.scenario_time(entry.node_to_local(float(ended))) \
            if isinstance(ended, (int, float)) else self.clock.now()
        parts = agents.parts.get(task_id)
        if parts is not None:  # a part of a job: the job ends with its last part, or its first failure
            rank = agents.rank[agent_id]
            if state == "completed":
                end = self.jobs.ended(task_id, rank, at, len(parts))
                if end is not None and agents.settle(task_id):
                    self.put(end, TaskFinished(task_id))
            elif agents.settle(task_id):
                self.put(at, TaskFailed(task_id, f"part {rank} on {self.entries[where].name}: "
                                                 f"{end_reason(doc)}"))
            return True
        if state == "completed":
            self.put(at, TaskFinished(task_id))
        else:
            self.put(at, TaskFailed(task_id, end_reason(doc)))
        return True

    def polled(self, doc: dict[str, Any], node: str) -> bool:
        """A task document read from node ``node``'s agent (not pushed): as :meth:`report`; one it
        cannot take ends its attempt as failed now, the refusal its reason (the agent no
        longer runs it, and would say the same again).  A document of an attempt whose end is
        known, or no longer wanted, is not read again (each poll lists it while the agent keeps it)."""
        agents, agent_id = self.agents, doc.get("id")
        task_id = agents.ids.get(agent_id) if isinstance(agent_id, str) else None
        if task_id is not None and (agent_id in agents.reported
                                    or agents.on_agent.get(task_id, (0, ""))[1] != agent_id):
            return True
        try:
            return self.report(doc, node)
        except PushRejected as e:
            assert task_id is not None and isinstance(agent_id, str)  # report refuses only its own
            agents.reported.add(agent_id)
            agents.placed_s.pop(task_id, None)
            log.warning("run %s: %s answered an unusable document for task %s: %s", self.id, node,
                        task_id, e)
            self.put(self.clock.now(), TaskFailed(task_id, f"its agent's document was refused: {e}"))
            return True

    def learn_use(self, task_id: int, doc: dict[str, Any]) -> None:
        """Keep what the agent measured of an ended task: its CPU seconds (``cpu_s``) and peak
        memory (``peak_mem_mb``, of all its processes, from its cgroup; an agent without it
        gives ``peak_rss_mb``, its largest process), journalled; they go on the task when it
        reaches its final state (:meth:`task_final`)."""
        cpu, peak = doc.get("cpu_s"), doc.get("peak_mem_mb", doc.get("peak_rss_mb"))
        used = (float(cpu) if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) else None,
                float(peak) if isinstance(peak, (int, float)) and not isinstance(peak, bool) else None)
        rank = self.agents.rank.get(str(doc.get("id")))
        record: dict[str, Any] = {"used": task_id, "cpu_s": used[0], "peak_mem_mb": used[1]}
        pull = _measured_pull_s(doc)
        if pull is not None:
            record["pull_s"] = self.measured_pull[task_id] = pull
        if rank is not None and task_id in self.agents.parts:  # a job's: its parts' sum and peak
            record["rank"] = rank
            used = self.jobs.used(task_id, rank, used)
        self.measured_use[task_id] = used
        self.journal.write(record)

    def learn_start(self, task_id: int, doc: dict[str, Any]) -> None:
        """Keep the start the agent measured (from its answer to the start, or any later
        document of the task: a resumed master may have lost the first), journalled.

        A node's wall clock may be off (a Pi has no battery-backed clock, a VM
        starts from its host's clock to the second): the master's poller keeps
        each node's offset, taken out here, so a task's start and end are where
        they were on one clock.
        """
        started = doc.get("started_s")
        agent_id = str(doc.get("id"))
        rank = self.agents.rank.get(agent_id) if task_id in self.agents.parts else None
        if not isinstance(started, (int, float)) or (
                self.jobs.known(task_id, rank) if rank is not None else task_id in self.measured_start):
            return
        node = self.agents.where(task_id, agent_id)
        local = float(started) if node is None else self.entries[node].node_to_local(float(started))
        at = self.clock.scenario_time(local)
        record: dict[str, Any] = {"started": task_id, "agent_id": doc.get("id"), "t": at}
        if rank is not None:  # a job's part: the job started when its last part did
            record["rank"] = rank
            self.measured_start[task_id] = self.jobs.started(task_id, rank, at)
        else:
            self.measured_start[task_id] = at
        self.journal.write(record)

    # ------------------------------------------------------------ the step
    def step(self, now: float, events: list[Event],
             util: dict[int, float] | None = None) -> list[Action]:
        """Hand ``events`` to the control plane at ``now`` and carry out its actions."""
        if self.replaying:
            self.output.until(now)
        self.last_now = now
        if not self.replaying:
            util = self.watch.take_utilization()
            record: dict[str, Any] = {"t": now, "ev": [event_json(e) for e in events]}
            if util:
                record["u"] = [[i, u] for i, u in util.items()]
            self.journal.write(record)
        if util:
            sink = self._util
            for i, u in util.items():
                sink[i] = u
        on_agent = self.agents.on_agent
        for ev in events:
            if isinstance(ev, TaskArrived):
                self._arrived += 1
            elif isinstance(ev, (TaskFinished, TaskFailed)):
                self.agents.forget(ev.task_id)  # (a job's parts still running are stopped)
            elif isinstance(ev, TaskNotStarted) and self.agents.forget(ev.task_id):
                self.not_started[ev.task_id] = self.not_started.get(ev.task_id, 0) + 1
        actions = self.control.step(now, events)
        self.carry_out(actions, now)
        if len(on_agent) > self.control.running_count:
            # tasks the control plane no longer runs (lost with their node, killed):
            # stop them on their agents too, in case those still run them
            running = {t.id for t in self.control.running()}
            for task_id in [t for t in on_agent if t not in running]:
                self.agents.stop(task_id)
        # only the nodes the step changed: a step must not cost the size of the cluster
        self.usage.follow()
        return actions

    def task_final(self, task: Task) -> None:
        """Write the row of a task that reached its final state (the control plane's
        ``on_final``), from the start its agent measured."""
        decided = task.start_s  # (a part measured before the decision is taken as started then)
        used = self.measured_use.pop(task.id, None)
        if used is not None and task.state is not TaskState.QUEUED:
            task.cpu_s, task.peak_mem_mb = used
        pull = self.measured_pull.pop(task.id, None)
        if pull is not None and task.state is not TaskState.QUEUED:
            task.pull_s = pull
            if self.images is not None and task.node >= 0:
                self.images.note_pulled(task, task.node)
        measured = self.measured_start.pop(task.id, None)
        if measured is not None and task.start_s >= 0 and task.state is not TaskState.QUEUED:
            end = task.end_s if task.end_s >= 0 else max(self.last_now, task.start_s)
            start = min(max(task.start_s, measured), end)
            # the cores were reserved from the decision on, the task ran from its measured
            # start: busy time is the task's own, as tasks.csv says
            for node, cores in zip(task.placed or (task.node,), part_cores(task), strict=True):
                self.usage.unbusy(node, cores * (start - task.start_s))
            self.start_lags.append(start - task.start_s)
            task.start_s = start
        assert self.writer is not None
        if task.placed and task.state is not TaskState.QUEUED:  # a job's parts, as measured
            end = task.end_s if task.end_s >= 0 else max(self.last_now, task.start_s)
            self.writer.part_times[task.id] = self.jobs.close(task.id, task.nodes, decided, end)
        self.writer.task_ended(task)
        self.outcomes[task.id] = outcome(task, self.names)

    def placements(self) -> dict[str, list[int]]:
        """The tasks started on agents and not ended yet, by node name (the dashboard's view)."""
        out: dict[str, list[int]] = {}
        parts = self.agents.parts
        for task_id, current in sorted(self.agents.on_agent.items()):
            for node, _agent_id in parts.get(task_id, (current,)):
                out.setdefault(self.nodes[node].name, []).append(task_id)
        return out

    def allocated(self) -> dict[str, tuple[int, int]]:
        """The cores and memory the control plane reserves for running tasks, by node name."""
        out: dict[str, tuple[int, int]] = {}
        if getattr(self, "control", None) is None:
            return out
        for task in self.control.running():
            for node, cores in zip(task.placed or (task.node,), part_cores(task), strict=True):
                name = self.nodes[node].name
                had = out.get(name, (0, 0))
                out[name] = (had[0] + cores, had[1] + task.mem_mb)
        return out

    # ------------------------------------------------------------ actions (Shell)
    def start(self, action: Start, now: float) -> None:
        """``POST /tasks`` on the node's agent."""
        self.measured_start.pop(action.task.id, None)  # a new attempt: its own start
        self.measured_use.pop(action.task.id, None)  # ... and its own use, if measured
        self.measured_pull.pop(action.task.id, None)  # ... and its own pull
        if action.task.placed:  # a parallel job: one part per node, all at once
            self.jobs.attempt(action.task.id)
            self.agents.launch_job(action.task)
        else:
            self.agents.launch(action.task, action.node, action.task.work_core_s)

    def migrate(self, action: Migrate, now: float) -> None:
        """What is left of the work, as modelled, restarts on the new node."""
        left = max(0.0, action.task.est_end_s - now)
        self.agents.stop(action.task.id)
        self.agents.launch(action.task, action.node,
                           left * action.task.cores * self.nodes[action.node].type.speed)

    def power_on(self, action: PowerOn, now: float) -> None:
        """The node's driver switches it on: ``NodeBooted`` at its boot report.  Without a
        driver power is emulated (the node stays on): ``NodeBooted`` after the type's
        ``boot_s``."""
        if self.drivers[action.node] is None:
            self.later(now + self.nodes[action.node].type.boot_s, NodeBooted(action.node))
        elif not self.replaying:
            self.power.on(action.node, now)

    def power_off(self, action: PowerOff, now: float) -> None:
        """The node's driver switches it off; emulated (it stays on) without one."""
        if self.drivers[action.node] is not None and not self.replaying:
            self.power.off(action.node)

    def booted(self, name: str, unix_s: float) -> bool:
        """Node ``name`` reported its boot at unix time ``unix_s`` (the master's boot route);
        whether this run was waiting for it."""
        index = self._index.get(name)
        return index is not None and self.power.booted(index, unix_s)

    @property
    def switching(self) -> str:
        """How the run's power actions were carried out: ``switched`` by drivers, or
        ``emulated`` (no node has one)."""
        return self.power.switching

    @property
    def measured_boots(self) -> list[tuple[str, float]]:
        """Each boot after a ``PowerOn``: ``(node, seconds from PowerOn to its boot report)``
        in scenario time, in the order they came."""
        return list(self.power.boots)

    def _note(self, line: str) -> None:
        if self.writer is not None and self.writer.events is not None:
            self.writer.events.write(line)

    def wake_at(self, action: WakeAt, now: float) -> None:
        self.later(action.time_s, Tick())

    # (a killed task is stopped on its agent in step, with the other tasks lost to the run)

    def later(self, at_s: float, ev: Event) -> None:
        """Put ``ev`` at scenario time ``at_s`` when that time comes."""
        if self.replaying:
            return  # re-created by the resume from the control plane's state where needed

        async def wait() -> None:
            await asyncio.sleep(max(0.0, self.clock.wall(at_s) - self.clock.unix()))
            self.put(at_s, ev)

        self.outbox.spawn(wait(), timer=True)

    # ------------------------------------------------------------ results
    async def _stop_all(self) -> None:
        """Cancel the timers, stop every task on its agent and wait for the agents' answers."""
        for task_id in list(self.agents.on_agent):
            self.agents.stop(task_id)
        await self.outbox.finish()

    async def _finish(self) -> Path:
        end = self.last_now
        if self.scenario.horizon_s is not None and self._stop_now:
            end = max(end, self.scenario.horizon_s)
        await self.output.last_row(end)
        self.usage.close(end)
        while not await self._sync():  # the journal first: the end must be on disk
            await asyncio.sleep(RETRY_S)
        self.power.close()
        await self._stop_all()
        for task in self.control.running() + self.control.queued():
            self.task_final(task)
        live = {"run": self.id, "timescale": self.options.timescale,
                "task_kind": self.options.task_kind,
                "agents": {e.name: e.base_url for e in self.entries},
                "task_runner": task_runner_of(self.entries),
                "start_lag_s": lag_figures(self.start_lags),
                "not_started": not_started_figures(self.not_started),
                "part_start_spread_s": spread_figures(self.jobs.spreads)}
        if self.hold.holds:
            live["held"] = {"holds": self.hold.holds, "held_s": round(self.hold.held_s, 3)}
        try:
            self.result = await self.output.commit(end, live, self.outcomes)
        except OSError as e:
            if not is_no_space(e):
                raise
            raise RunSuspended(f"no space left for the run's result: {e.strerror}; free space"
                               " and restart the master with --resume") from e
        self.status.state = "completed"
        self._update_status()
        return self.result

    async def cancel(self) -> None:
        """Stop the run: kill its running tasks; no result is written."""
        self.status.state = "cancelled"
        self.power.close()
        await self._stop_all()


def _drivers(entries: list[AgentNode]) -> list[PowerDriver | None]:
    """Each node's power driver, from the master's cluster config (None: emulated)."""
    try:
        return [driver_for(e.node) for e in entries]
    except PowerError as e:
        raise ValueError(str(e)) from None
