"""The live shell: a scenario replayed on real agents through the same control plane and policy.

:class:`LiveRun` is the counterpart of :class:`rpiaas.sim.engine.Simulation`:
both extend :class:`rpiaas.core.shell.Shell`.  Time is the wall clock: scenario
second ``t`` is ``t0 + t * timescale`` unix seconds, so a timescale of 0.01
replays a scenario 100 times faster.  Events come from the world instead of
a schedule:

- ``TaskArrived`` when a task's (scaled) arrival time comes;
- ``TaskFinished`` / ``TaskFailed`` when an agent reports a task's end, pushed
  to the master (``notify_url``) and also found by polling the agents'
  ``GET /tasks`` every poll interval (:mod:`.agent_tasks`);
- ``NodeDown`` / ``NodeUp`` when the master's poller sees a node go offline or
  come back (a killed agent takes its tasks with it);
- ``Tick`` at the times the policy asked for (``WakeAt``), ``NodeBooted`` a
  node type's ``boot_s`` after a ``PowerOn`` (power is emulated: the Pis stay on).

Actions are carried out concurrently: ``Start`` is ``POST /tasks`` on the
node's agent, ``Kill`` is ``DELETE``, ``Migrate`` kills and starts the rest of
the task on the new node.  Every batch of events is journalled before the
actions it causes go out (:mod:`.journal`), so a master that dies mid-run
takes the run up again where it was (:mod:`.resume`).

The run directory has the simulation's format with ``mode: live``: task
times in scenario seconds (measured starts and ends), node series with the
measured CPU and memory use (:mod:`.result`), and energy from each node
type's power model on the measured utilisation.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    NodeUp,
    PowerOn,
    Start,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    Tick,
    WakeAt,
)
from ..core.shell import Shell
from ..model import Task
from ..rundir import RunWriter
from ..rundir.fidelity import Outcome
from ..scenario import Scenario, rng_streams
from ..store import HistoryStore
from .agent_client import AgentClient
from .agent_tasks import AgentTasks
from .journal import JOURNAL, Journal, event_json
from .options import RESULT, AgentNode, LiveOptions, RunState
from .result import LiveResult
from .resume import resume

__all__ = ["LiveRun"]

log = logging.getLogger(__name__)


class LiveRun(Shell):
    """One scenario replayed on the testbed; :meth:`run` until it ends.

    :param run_id: the run's name, unique on this master (it prefixes agent task ids).
    :param scenario: what to replay; its nodes are ``entries``, in the same order.
    :param entries: the agents of the scenario's nodes (the master's registry entries).
    :param client: agent client carrying the agents' token.
    :param store: the master's history store (measured node series).
    :param directory: the run's directory on the master: journal and result.
    :param notify_url: where agents push task ends (None: polling only).
    :param twin: simulates the scenario when the run ends (its summary and each task's
        outcome), for ``fidelity.json``; None: no twin.
    """

    def __init__(self, run_id: str, scenario: Scenario, entries: list[AgentNode],
                 client: AgentClient, store: HistoryStore, directory: Path,
                 options: LiveOptions, notify_url: str | None = None,
                 clock: Callable[[], float] = time.time,
                 twin: Callable[[Scenario], tuple[dict[str, Any], dict[int, Outcome]]] | None = None,
                 ) -> None:
        super().__init__()
        self.id = run_id
        self.scenario = scenario
        self.entries = entries
        self.client = client
        self.store = store
        self.directory = directory
        self.options = options
        self.notify_url = notify_url
        self.clock = clock
        self.twin = twin
        self.status = RunState(run_id)
        self.nodes = scenario.cluster.nodes
        self.agents = AgentTasks(self)
        self.output = LiveResult(self)
        self._inbox: asyncio.Queue[tuple[float, Event] | None] = asyncio.Queue()
        # measured utilisation polled since the last step: given to the view before the
        # next one (and journalled with it, so a resumed run decides as the first did)
        self._util_news: dict[int, float] = {}
        self._util_seen: list[Any] = [None] * len(entries)
        self._pending: set[asyncio.Task[None]] = set()  # agent calls under way
        self._timers: set[asyncio.Task[None]] = set()  # WakeAt and boot timers
        self._held: list[Any] = []  # actions waiting for the journal to reach the disk
        self.online: list[bool] = [e.online is not False for e in entries]
        self._arrivals_left = True
        self._stop_now = False  # the horizon came
        self._arrived = 0
        self.last_now = 0.0
        self.t0 = 0.0
        self.replaying = False  # feeding the journal to the control plane: nothing goes out
        self.writer: RunWriter | None = None
        self.result: Path | None = None

    # ------------------------------------------------------------ time
    def now(self) -> float:
        """Scenario seconds since the run began."""
        return (self.clock() - self.t0) / self.options.timescale

    def scenario_time(self, unix_s: float) -> float:
        """The scenario time of unix time ``unix_s``."""
        return (unix_s - self.t0) / self.options.timescale

    def wall(self, scenario_s: float) -> float:
        """The unix time of scenario time ``scenario_s``."""
        return self.t0 + scenario_s * self.options.timescale

    # ------------------------------------------------------------ the run
    async def run(self) -> Path | None:
        """Replay (or resume) the run; the result directory, or None if cancelled."""
        self.directory.mkdir(parents=True, exist_ok=True)
        streams = rng_streams(self.scenario.seed)
        self.tasks: Iterator[Task] = self.scenario.workload.tasks(streams["workload"])
        self.writer = RunWriter(self.directory / RESULT, event_log=self.scenario.event_log,
                                decisions=self.scenario.decision_trace)
        self.writer.node_names = [n.name for n in self.nodes]
        self.control = ControlPlane(
            self.nodes, self.scenario.policies(streams["policy"]),
            log=self.writer.events if self.scenario.event_log else None,
            on_final=self.output.task_ended, retries=self.scenario.retries,
            initial_state=[self.scenario.initial_power] * len(self.nodes),
            trace=self.writer.decisions)
        self.usage = NodeUsage(self.control, measured=True)
        self._util = self.control.view.utilization_sink(measured=True)
        journal_path = self.directory / JOURNAL
        records = Journal.read(journal_path)
        self.journal = Journal(journal_path)
        workers: list[asyncio.Task[None]] = []
        try:
            if records:
                await resume(self, records)
            else:
                self.t0 = self.clock()
                self.journal.write({"run": self.id, "t0": self.t0,
                                    "timescale": self.options.timescale,
                                    "task_kind": self.options.task_kind,
                                    "notify_url": self.notify_url})
                self.journal.sync()
                down = [i for i, up in enumerate(self.online) if not up]
                if down:
                    self.step(0.0, [NodeDown(i, "offline at start") for i in down])
                    self.journal.sync()
                    self._release()
            workers = [asyncio.create_task(w()) for w in
                       (self._feed_arrivals, self._watch, self.output.loop)]
            if self.scenario.horizon_s is not None:
                workers.append(asyncio.create_task(self._horizon(self.scenario.horizon_s)))
            await self._loop()
            return await self._finish()
        except BaseException:
            self.writer.abort()
            raise
        finally:
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w
            self.journal.close()

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
            # fsync runs in a thread, so the loop takes in events meanwhile (group commit)
            if self._held:
                await self.journal.sync_async()
                self._release()
            self._update_status()

    async def _horizon(self, horizon_s: float) -> None:
        await asyncio.sleep(max(0.0, self.wall(horizon_s) - self.clock()))
        self._stop_now = True
        self._inbox.put_nowait(None)

    def _done(self) -> bool:
        """The simulation's end rule: no task to come, waiting or running, no node booting.
        A wake-up the policy asked for does not keep the run going (as in simulation:
        an idle node's switch-off timer after the last task is not part of the run)."""
        c = self.control
        return (not self._arrivals_left and not c.running_count and not c.queue_length
                and not c.booting and not self._pending)

    def _update_status(self) -> None:
        st, c = self.status, self.control
        st.arrived, st.queued, st.running = self._arrived, c.queue_length, c.running_count
        st.ended = self.writer.stats.ended if self.writer is not None else 0
        st.now_s = self.last_now

    # ------------------------------------------------------------ events in
    def put(self, at_s: float, ev: Event) -> None:
        """An event for the control plane, at scenario time ``at_s``."""
        self._inbox.put_nowait((at_s, ev))

    async def _feed_arrivals(self) -> None:
        for task in self.tasks:
            delay = self.wall(task.arrival_s) - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self.put(task.arrival_s, TaskArrived(task))
        self._arrivals_left = False
        self._inbox.put_nowait(None)  # wake the loop: it may be done

    async def _watch(self) -> None:
        """Node states from the poller, and task ends the pushes missed."""
        interval = self.options.watch_interval_s
        next_poll = 0.0
        while True:
            for i, entry in enumerate(self.entries):
                up = entry.online is not False
                if up != self.online[i]:
                    self.online[i] = up
                    now = self.now()
                    self.put(now, NodeUp(i) if up else NodeDown(i, entry.reason or "agent offline"))
                sample = entry.sample
                if sample is not self._util_seen[i]:
                    self._util_seen[i] = sample
                    if sample is not None:
                        self._util_news[i] = float(sample.cpu_util)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                await self.agents.poll()
            await asyncio.sleep(min(0.2, interval))

    # ------------------------------------------------------------ the step
    def step(self, now: float, events: list[Event],
             util: dict[int, float] | None = None) -> list[Action]:
        """Hand ``events`` to the control plane at ``now`` and carry out its actions."""
        if self.replaying:
            self.output.until(now)
        self.last_now = now
        if not self.replaying:
            util, self._util_news = self._util_news, {}
            record: dict[str, Any] = {"t": now, "ev": [event_json(e) for e in events]}
            if util:
                record["u"] = [[i, u] for i, u in util.items()]
            self.journal.write(record)
        if util:
            sink = self._util
            for i, u in util.items():
                sink[i] = u
        for ev in events:
            if isinstance(ev, TaskArrived):
                self._arrived += 1
            elif isinstance(ev, (TaskFinished, TaskFailed)):
                self.agents.on_agent.pop(ev.task_id, None)
        actions = self.control.step(now, events)
        self.carry_out(actions, now)
        on_agent = self.agents.on_agent
        if len(on_agent) > self.control.running_count:
            # tasks the control plane no longer runs (lost with their node, killed):
            # stop them on their agents too, in case those still run them
            running = {t.id for t in self.control.running()}
            for task_id in [t for t in on_agent if t not in running]:
                self.agents.stop(task_id)
        # only the nodes the step changed: a step must not cost the size of the cluster
        self.usage.follow(now)
        return actions

    def placements(self) -> dict[str, list[int]]:
        """The tasks started on agents and not ended yet, by node name (the dashboard's view)."""
        out: dict[str, list[int]] = {}
        for task_id, (node, _agent_id) in sorted(self.agents.on_agent.items()):
            out.setdefault(self.nodes[node].name, []).append(task_id)
        return out

    # ------------------------------------------------------------ actions (Shell)
    def start(self, action: Start, now: float) -> None:
        """``POST /tasks`` on the node's agent."""
        self.agents.measured_start.pop(action.task.id, None)  # a new attempt: its own start
        self.agents.launch(action.task, action.node, action.task.work_core_s)

    def migrate(self, action: Migrate, now: float) -> None:
        """What is left of the work, as modelled, restarts on the new node."""
        left = max(0.0, action.task.est_end_s - now)
        self.agents.stop(action.task.id)
        self.agents.launch(action.task, action.node,
                           left * action.task.cores * self.nodes[action.node].type.speed)

    def power_on(self, action: PowerOn, now: float) -> None:
        """Power is emulated (the Pis stay on): ``NodeBooted`` after the type's ``boot_s``."""
        self.later(now + self.nodes[action.node].type.boot_s, NodeBooted(action.node))

    def wake_at(self, action: WakeAt, now: float) -> None:
        self.later(action.time_s, Tick())

    # (a killed task is stopped on its agent in step, with the other tasks lost to the run)

    def later(self, at_s: float, ev: Event) -> None:
        """Put ``ev`` at scenario time ``at_s`` when that time comes."""
        if self.replaying:
            return  # re-created by the resume from the control plane's state where needed

        async def wait() -> None:
            await asyncio.sleep(max(0.0, self.wall(at_s) - self.clock()))
            self.put(at_s, ev)

        self.spawn(wait(), self._timers)

    def act(self, coro: Any) -> None:
        """An action for an agent: held until the journal is on disk (see :meth:`_loop`)."""
        self._held.append(coro)

    def _release(self) -> None:
        held, self._held = self._held, []
        for coro in held:
            self.spawn(coro)

    def spawn(self, coro: Any, into: set[asyncio.Task[None]] | None = None) -> None:
        """Run ``coro`` now; the run does not end while it is under way."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        where = self._pending if into is None else into
        where.add(task)

        def done(t: asyncio.Task[None]) -> None:
            where.discard(t)
            self._inbox.put_nowait(None)  # wake the loop: it may be done
            if not t.cancelled() and t.exception() is not None:
                log.error("run %s: %s", self.id, t.exception())

        task.add_done_callback(done)

    # ------------------------------------------------------------ results
    async def _stop_all(self) -> None:
        """Cancel the timers, stop every task on its agent and wait for the agents' answers."""
        for timer in list(self._timers):
            timer.cancel()
        for task_id in list(self.agents.on_agent):
            self.agents.stop(task_id)
        self._release()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _finish(self) -> Path:
        end = self.last_now
        if self.scenario.horizon_s is not None and self._stop_now:
            end = max(end, self.scenario.horizon_s)
        await self.output.last_row(end)
        self.usage.close(end)
        self.journal.sync()
        await self._stop_all()
        for task in self.control.running() + self.control.queued():
            self.output.task_ended(task)
        self.result = await self.output.commit(end)
        self.status.state = "completed"
        self._update_status()
        return self.result

    async def cancel(self) -> None:
        """Stop the run: kill its running tasks; no result is written."""
        self.status.state = "cancelled"
        await self._stop_all()
