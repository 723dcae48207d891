"""The live shell: a scenario replayed on real agents through the same control plane and policy.

:class:`LiveRun` is the counterpart of :class:`rpiaas.sim.engine.Simulation`.
Time is the wall clock: scenario second ``t`` is ``t0 + t * timescale`` unix
seconds, so a timescale of 0.01 replays a scenario 100 times faster.  Events
come from the world instead of a schedule:

- ``TaskArrived`` when a task's (scaled) arrival time comes;
- ``TaskFinished`` / ``TaskFailed`` when an agent reports a task's end, pushed
  to the master (``notify_url``) and also found by polling the agents'
  ``GET /tasks`` every poll interval, so a lost push loses nothing; the event
  is stamped with the end the agent measured;
- ``NodeDown`` / ``NodeUp`` when the master's poller sees a node go offline or
  come back (a killed agent takes its tasks with it);
- ``Tick`` at the times the policy asked for (``WakeAt``), ``NodeBooted`` a
  node type's ``boot_s`` after a ``PowerOn`` (power is emulated: the Pis stay on).

Actions are carried out concurrently: ``Start`` is ``POST /tasks`` on the
node's agent (task id ``RUN.TASK.EPOCH``, so a start is never done twice),
``Kill`` is ``DELETE``, ``Migrate`` kills and starts the rest of the task on
the new node.  A task runs as ``sleep`` for its modelled runtime on that node
(``work_core_s / (cores * speed)``, times the timescale: exact, so runs can be
compared with the simulation) or as ``cpu`` doing its real work.

**Journal.**  Before each batch is handed to the control plane it is appended
to ``journal.jsonl``, which is flushed to disk before any of the resulting
actions goes out; measured starts are appended too.  The
control plane is deterministic, so a master that dies mid-run rebuilds its
exact state by feeding the journal to a fresh control plane; then it asks
each agent about the tasks that were running: those that ended meanwhile are
collected, those whose start never reached the agent are started now, and
those still running are watched again.  No task is lost or started twice.

The run directory has the simulation's format with ``mode: live``: task
times in scenario seconds (measured starts and ends), node series with the
measured CPU and memory use, and energy from each node type's power model on
the measured utilisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..control import ControlPlane
from ..events import (
    Action,
    Event,
    Kill,
    Migrate,
    NodeBooted,
    NodeDown,
    NodeUp,
    PowerOff,
    PowerOn,
    Reject,
    Start,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    Tick,
    WakeAt,
)
from ..model import PowerState, Task, TaskState
from ..rundir import RunWriter, run_record
from ..rundir.fidelity import Outcome, fidelity, outcome
from ..scenario import Scenario
from ..shell import NodeUsage, rng_streams
from ..store import HistoryStore
from .client import AgentClient, AgentError
from .registry import NodeEntry

__all__ = ["TASK_KINDS", "LiveOptions", "LiveRun", "RunState"]

log = logging.getLogger(__name__)

TASK_KINDS = ("sleep", "cpu")
JOURNAL = "journal.jsonl"
RESULT = "result"
_MIN_SAMPLE_WALL_S = 0.5


@dataclass(frozen=True)
class LiveOptions:
    """How a scenario is replayed.

    :param timescale: wall seconds per scenario second (0.01: 100 times faster).
    :param task_kind: ``sleep`` (the modelled runtime, exact) or ``cpu`` (real work).
    :param watch_interval_s: how often running tasks are looked up on their agents.
    """

    timescale: float = 1.0
    task_kind: str = "sleep"
    watch_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.timescale > 0 and math.isfinite(self.timescale)):
            raise ValueError(f"timescale: expected a positive number, got {self.timescale!r}")
        if self.task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind: expected one of {', '.join(TASK_KINDS)}, "
                             f"got {self.task_kind!r}")


@dataclass
class RunState:
    """What the API shows of a run."""

    id: str
    state: str = "running"  # running | completed | failed | cancelled
    error: str = ""
    arrived: int = 0
    ended: int = 0
    queued: int = 0
    running: int = 0
    now_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Journal:
    """Append-only JSON lines; :meth:`sync` puts what was written on disk.

    The shell syncs once per pass over its inbox, before any action of that
    pass reaches an agent (actions go out only when the event loop next
    runs), so the journal is always ahead of the world at one fsync a pass.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._dirty = False

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        out = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line cut short by a crash: the last one
                    break
        return out

    def write(self, record: dict[str, Any]) -> None:
        if self._file.closed:  # a start that answered after the run was cancelled
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._dirty = True

    def sync(self) -> None:
        if self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False

    async def sync_async(self) -> None:
        """:meth:`sync` with the fsync in a thread (writes may go on meanwhile)."""
        if self._dirty:
            self._file.flush()  # on the loop's thread: the file object is not thread-safe
            self._dirty = False
            await asyncio.to_thread(os.fsync, self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()


def _lag_figures(lags: list[float]) -> dict[str, Any]:
    """How long after its decision a task started on its agent (scenario seconds): the
    testbed's timing jitter, which ``rpiaas compare`` takes as its default tolerance."""
    if not lags:
        return {"tasks": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(lags)

    def q(p: float) -> float:
        return float(f"{ordered[min(len(ordered) - 1, int(p * len(ordered)))]:.6g}")

    return {"tasks": len(ordered), "p50": q(0.5), "p95": q(0.95), "max": q(1.0)}


def _event_json(ev: Event) -> dict[str, Any]:
    if isinstance(ev, TaskArrived):
        return {"e": "arrive", "task": ev.task.id}
    if isinstance(ev, TaskFinished):
        return {"e": "finish", "task": ev.task_id}
    if isinstance(ev, TaskFailed):
        return {"e": "fail", "task": ev.task_id, "reason": ev.reason}
    if isinstance(ev, NodeDown):
        return {"e": "down", "node": ev.node, "reason": ev.reason}
    if isinstance(ev, NodeUp):
        return {"e": "up", "node": ev.node}
    if isinstance(ev, NodeBooted):
        return {"e": "booted", "node": ev.node}
    return {"e": "tick"}


class LiveRun:
    """One scenario replayed on the testbed; :meth:`run` until it ends.

    :param run_id: the run's name, unique on this master (it prefixes agent task ids).
    :param scenario: what to replay; its nodes are ``entries``, in the same order.
    :param entries: the registry entries of the scenario's nodes.
    :param client: agent client carrying the agents' token.
    :param store: the master's history store (measured node series).
    :param directory: the run's directory on the master: journal and result.
    :param notify_url: where agents push task ends (None: polling only).
    :param twin: simulates the scenario when the run ends (its summary and each task's
        outcome), for ``fidelity.json``; None: no twin.
    """

    def __init__(self, run_id: str, scenario: Scenario, entries: list[NodeEntry],
                 client: AgentClient, store: HistoryStore, directory: Path,
                 options: LiveOptions, notify_url: str | None = None,
                 clock: Callable[[], float] = time.time,
                 twin: Callable[[Scenario], tuple[dict[str, Any], dict[int, Outcome]]] | None = None,
                 ) -> None:
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
        self._index = {n.name: i for i, n in enumerate(self.nodes)}
        self._inbox: asyncio.Queue[tuple[float, Event] | None] = asyncio.Queue()
        self._agent_ids: dict[str, int] = {}  # agent task id -> task id
        self._on_agent: dict[int, tuple[int, str]] = {}  # running task id -> (node, agent id)
        self._reported: set[str] = set()
        self._measured_start: dict[int, float] = {}
        self._outcomes: dict[int, Outcome] = {}
        self._start_lags: list[float] = []  # measured start - decision, scenario seconds
        self._names = [n.name for n in self.nodes]
        # measured utilisation polled since the last step: given to the view before the
        # next one (and journalled with it, so a resumed run decides as the first did)
        self._util_news: dict[int, float] = {}
        self._util_seen: list[Any] = [None] * len(entries)
        self._pending: set[asyncio.Task[None]] = set()  # agent calls under way
        self._timers: set[asyncio.Task[None]] = set()  # WakeAt and boot timers
        self._held: list[Any] = []  # actions waiting for the journal to reach the disk
        self._online: list[bool] = [e.online is not False for e in entries]
        self._arrivals_left = True
        self._stop_now = False  # the horizon came
        self._arrived = 0
        self._last_now = 0.0
        self._t0 = 0.0
        self._replaying = False
        self.writer: RunWriter | None = None
        self.result: Path | None = None

    # ------------------------------------------------------------ time
    def now(self) -> float:
        """Scenario seconds since the run began."""
        return (self.clock() - self._t0) / self.options.timescale

    def _scenario_time(self, unix_s: float) -> float:
        return (unix_s - self._t0) / self.options.timescale

    def _wall(self, scenario_s: float) -> float:
        return self._t0 + scenario_s * self.options.timescale

    # ------------------------------------------------------------ the run
    async def run(self) -> Path | None:
        """Replay (or resume) the run; the result directory, or None if cancelled."""
        self.directory.mkdir(parents=True, exist_ok=True)
        streams = rng_streams(self.scenario.seed)
        self._tasks: Iterator[Task] = self.scenario.workload.tasks(streams["workload"])
        self.writer = RunWriter(self.directory / RESULT, event_log=self.scenario.event_log,
                                decisions=self.scenario.decision_trace)
        self.writer.node_names = [n.name for n in self.nodes]
        self.control = ControlPlane(
            self.nodes, self.scenario.policies(streams["policy"]),
            log=self.writer.events if self.scenario.event_log else None,
            on_final=self._final, retries=self.scenario.retries,
            initial_state=[self.scenario.initial_power] * len(self.nodes),
            trace=self.writer.decisions)
        self.usage = NodeUsage(self.nodes, [int(self.scenario.initial_power)] * len(self.nodes),
                               measured=True)
        self._util = self.control.view.utilization_sink(measured=True)
        self._last_sample_s: float | None = None
        self._next_sample_s = 0.0
        journal_path = self.directory / JOURNAL
        records = _Journal.read(journal_path)
        self._journal = _Journal(journal_path)
        workers: list[asyncio.Task[None]] = []
        try:
            if records:
                await self._resume(records)
            else:
                self._t0 = self.clock()
                self._journal.write({"run": self.id, "t0": self._t0,
                                     "timescale": self.options.timescale,
                                     "task_kind": self.options.task_kind,
                                     "notify_url": self.notify_url})
                self._journal.sync()
                down = [i for i, up in enumerate(self._online) if not up]
                if down:
                    self._step(0.0, [NodeDown(i, "offline at start") for i in down])
                    self._journal.sync()
                    self._release()
            workers = [asyncio.create_task(w()) for w in
                       (self._feed_arrivals, self._watch, self._sample_loop)]
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
            self._journal.close()

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
                self._step(max(at, self._last_now), batch)
            # the journal reaches the disk before the actions of these steps go out; the
            # fsync runs in a thread, so the loop takes in events meanwhile (group commit)
            if self._held:
                await self._journal.sync_async()
                self._release()
            self._update_status()

    async def _horizon(self, horizon_s: float) -> None:
        await asyncio.sleep(max(0.0, self._wall(horizon_s) - self.clock()))
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
        st.now_s = self._last_now

    # ------------------------------------------------------------ events in
    def _put(self, at_s: float, ev: Event) -> None:
        self._inbox.put_nowait((at_s, ev))

    async def _feed_arrivals(self) -> None:
        for task in self._tasks:
            delay = self._wall(task.arrival_s) - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._put(task.arrival_s, TaskArrived(task))
        self._arrivals_left = False
        self._inbox.put_nowait(None)  # wake the loop: it may be done

    async def _watch(self) -> None:
        """Node states from the poller, and task ends the pushes missed."""
        interval = self.options.watch_interval_s
        next_poll = 0.0
        while True:
            for i, entry in enumerate(self.entries):
                up = entry.online is not False
                if up != self._online[i]:
                    self._online[i] = up
                    now = self.now()
                    self._put(now, NodeUp(i) if up else NodeDown(i, entry.reason or "agent offline"))
                sample = entry.sample
                if sample is not self._util_seen[i]:
                    self._util_seen[i] = sample
                    if sample is not None:
                        self._util_news[i] = float(sample.cpu_util)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                await self._poll_tasks()
            await asyncio.sleep(min(0.2, interval))

    async def _poll_tasks(self) -> None:
        nodes = sorted({node for node, _ in self._on_agent.values()})
        results = await asyncio.gather(
            *(self.client.tasks(self.entries[n].base_url) for n in nodes), return_exceptions=True)
        for n, docs in zip(nodes, results, strict=True):
            if isinstance(docs, BaseException):
                continue  # the node's own poll decides whether it is down
            for doc in docs:
                if doc.get("state") != "running":
                    self.task_report(doc, self.entries[n].name)

    def node_of(self, agent_id: object) -> str | None:
        """The node that runs this run's task with ``agent_id`` now, or None."""
        task_id = self._agent_ids.get(agent_id) if isinstance(agent_id, str) else None
        current = self._on_agent.get(task_id) if task_id is not None else None
        return self.entries[current[0]].name if current and current[1] == agent_id else None

    def task_report(self, doc: dict[str, Any], node: str | None = None) -> bool:
        """An agent's task document (pushed or polled): its end becomes an event.

        Returns whether the document belonged to this run; with ``node`` (the
        node that sent it), a document of a task running on another node does not.
        """
        agent_id = doc.get("id")
        if not isinstance(agent_id, str) or agent_id not in self._agent_ids:
            return False
        if node is not None and self.node_of(agent_id) not in (None, node):
            return False
        state = doc.get("state")
        if state == "running" or agent_id in self._reported:
            return True
        task_id = self._agent_ids[agent_id]
        current = self._on_agent.get(task_id)
        if current is None or current[1] != agent_id:
            return True  # killed or moved by us: the control plane already knows
        self._learn_start(task_id, doc)
        self._reported.add(agent_id)
        ended = doc.get("ended_s")
        at = self._scenario_time(float(ended)) if isinstance(ended, (int, float)) else self.now()
        if state == "completed":
            self._put(at, TaskFinished(task_id))
        else:
            reason = doc.get("error") or f"{state} with exit status {doc.get('exit_status')}"
            self._put(at, TaskFailed(task_id, str(reason)))
        return True

    # ------------------------------------------------------------ the step
    def _step(self, now: float, events: list[Event],
              util: dict[int, float] | None = None) -> list[Action]:
        if self._replaying:
            self._samples_until(now)
        self._last_now = now
        if not self._replaying:
            util, self._util_news = self._util_news, {}
            record: dict[str, Any] = {"t": now, "ev": [_event_json(e) for e in events]}
            if util:
                record["u"] = [[i, u] for i, u in util.items()]
            self._journal.write(record)
        if util:
            sink = self._util
            for i, u in util.items():
                sink[i] = u
        for ev in events:
            if isinstance(ev, TaskArrived):
                self._arrived += 1
            elif isinstance(ev, (TaskFinished, TaskFailed)):
                self._forget(ev.task_id)
        actions = self.control.step(now, events)
        for a in actions:
            self._carry_out(a, now)
        if len(self._on_agent) > self.control.running_count:
            # tasks the control plane no longer runs (lost with their node, killed):
            # stop them on their agents too, in case those still run them
            running = {t.id for t in self.control.running()}
            for task_id in [t for t in self._on_agent if t not in running]:
                self._stop_agent_task(task_id)
        # only the nodes the step changed: a step must not cost the size of the cluster
        self.usage.follow(self.control, now)
        return actions

    def _forget(self, task_id: int) -> None:
        self._on_agent.pop(task_id, None)

    def placements(self) -> dict[str, list[int]]:
        """The tasks started on agents and not ended yet, by node name (the dashboard's view)."""
        out: dict[str, list[int]] = {}
        for task_id, (node, _agent_id) in sorted(self._on_agent.items()):
            out.setdefault(self.nodes[node].name, []).append(task_id)
        return out

    def _carry_out(self, a: Action, now: float) -> None:
        if isinstance(a, Start):
            self._measured_start.pop(a.task.id, None)  # a new attempt: its own start (a move keeps it)
            self._launch(a.task, a.node, a.task.work_core_s)
        elif isinstance(a, Kill):
            pass  # stopped on its agent in _step, with the other lost tasks
        elif isinstance(a, Migrate):
            # what is left of the work, as modelled, restarts on the new node
            left = max(0.0, a.task.est_end_s - now)
            self._stop_agent_task(a.task.id)
            self._launch(a.task, a.node, left * a.task.cores * self.nodes[a.node].type.speed)
        elif isinstance(a, PowerOn):
            boot = self.nodes[a.node].type.boot_s
            self._later(now + boot, NodeBooted(a.node))
        elif isinstance(a, WakeAt):
            self._later(a.time_s, Tick())
        elif not isinstance(a, (Reject, PowerOff)):  # pragma: no cover
            raise TypeError(f"unknown action {a!r}")

    def _later(self, at_s: float, ev: Event) -> None:
        if self._replaying:
            return  # re-created by _resume from the control plane's state where needed

        async def wait() -> None:
            await asyncio.sleep(max(0.0, self._wall(at_s) - self.clock()))
            self._put(at_s, ev)

        self._spawn(wait(), self._timers)

    def _act(self, coro: Any) -> None:
        """An action for an agent: held until the journal is on disk (see :meth:`_loop`)."""
        self._held.append(coro)

    def _release(self) -> None:
        held, self._held = self._held, []
        for coro in held:
            self._spawn(coro)

    def _spawn(self, coro: Any, into: set[asyncio.Task[None]] | None = None) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        where = self._pending if into is None else into
        where.add(task)

        def done(t: asyncio.Task[None]) -> None:
            where.discard(t)
            self._inbox.put_nowait(None)  # wake the loop: it may be done
            if not t.cancelled() and t.exception() is not None:
                log.error("run %s: %s", self.id, t.exception())

        task.add_done_callback(done)

    # ------------------------------------------------------------ agents
    def _spec(self, task: Task, node: int, work_core_s: float, agent_id: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"id": agent_id, "cores": task.cores, "mem_mb": task.mem_mb}
        scale = self.options.timescale
        if self.options.task_kind == "sleep":
            runtime = work_core_s / (task.cores * self.nodes[node].type.speed)
            spec.update(kind="sleep", duration_s=max(runtime * scale, 1e-3))
        else:
            spec.update(kind="cpu", work_core_s=max(work_core_s * scale, 1e-3))
        if self.notify_url:
            spec["notify_url"] = self.notify_url
        return spec

    def _launch(self, task: Task, node: int, work_core_s: float) -> None:
        agent_id = f"{self.id}.{task.id}.{task.epoch}"
        self._agent_ids[agent_id] = task.id
        self._on_agent[task.id] = (node, agent_id)
        if self._replaying:
            return  # reconciled with the agent by _resume
        spec = self._spec(task, node, work_core_s, agent_id)
        self._act(self._post(task.id, node, spec))

    async def _post(self, task_id: int, node: int, spec: dict[str, Any]) -> None:
        entry = self.entries[node]
        try:
            doc = await self.client.start_task(entry.base_url, spec)
        except AgentError as e:
            if e.status == 409 and "exists" in str(e).lower():
                return  # started before (a resumed run): watched like any other
            if self._on_agent.get(task_id, (0, ""))[1] == spec["id"]:
                self._reported.add(spec["id"])
                self._put(self.now(), TaskFailed(task_id, f"start on {entry.name}: {e}"))
            return
        self._learn_start(task_id, doc)

    def _learn_start(self, task_id: int, doc: dict[str, Any]) -> None:
        """Keep the start the agent measured (from its answer to the start, or any later
        document of the task: a resumed master may have lost the first)."""
        started = doc.get("started_s")
        if isinstance(started, (int, float)) and task_id not in self._measured_start:
            at = self._scenario_time(float(started))
            self._measured_start[task_id] = at
            self._journal.write({"started": task_id, "agent_id": doc.get("id"), "t": at})

    def _stop_agent_task(self, task_id: int) -> None:
        current = self._on_agent.pop(task_id, None)
        if current is None or self._replaying:
            return
        node, agent_id = current
        self._reported.add(agent_id)

        async def kill() -> None:
            with contextlib.suppress(AgentError):
                await self.client.kill_task(self.entries[node].base_url, agent_id)

        self._act(kill())

    # ------------------------------------------------------------ results
    def _final(self, task: Task) -> None:
        measured = self._measured_start.pop(task.id, None)
        if measured is not None and task.start_s >= 0 and task.state is not TaskState.QUEUED:
            end = task.end_s if task.end_s >= 0 else max(self._last_now, task.start_s)
            start = min(max(task.start_s, measured), end)
            # the cores were reserved from the decision on, the task ran from its measured
            # start: busy time is the task's own, as tasks.csv says
            self.usage.unbusy(task.node, task.cores * (start - task.start_s))
            self._start_lags.append(start - task.start_s)
            task.start_s = start
        assert self.writer is not None
        self.writer.task_ended(task)
        self._outcomes[task.id] = outcome(task, self._names)

    def _sample_interval(self) -> float:
        """The scenario's sample interval, but never below half a wall second."""
        return max(self.scenario.sample_interval_s, _MIN_SAMPLE_WALL_S / self.options.timescale)

    async def _sample_loop(self) -> None:
        while True:
            at = self._next_sample_s
            await asyncio.sleep(max(0.0, self._wall(at) - self.clock()))
            latest = await asyncio.to_thread(self.store.latest)
            self._write_sample(at, {name: st.sample for name, st in latest.items()})

    def _samples_until(self, now: float) -> None:
        """While replaying the journal: the rows due before ``now``, from the stored history."""
        while self._next_sample_s <= now:
            at = self._next_sample_s
            wall = self._wall(at)
            readings: dict[str, Any] = {}
            for node in self.nodes:
                got = self.store.history(node.name, wall - 60.0, wall + 1e-6)
                readings[node.name] = got[-1] if got else None
            self._write_sample(at, readings)

    def _write_sample(self, now: float, readings: dict[str, Any]) -> None:
        """A row per node: control-plane state and reservations, measured use, and the power
        model on the measured utilisation (which holds until the next sample)."""
        assert self.writer is not None
        self._next_sample_s = now + self._sample_interval()
        self._last_sample_s = now
        mem = []
        for i, name in enumerate(self._names):
            sample = readings.get(name)
            self.usage.measure(i, now, float(sample.cpu_util) if sample is not None else 0.0)
            mem.append(float(sample.mem_used_mb) if sample is not None else 0.0)
        self.writer.nodes.write(self.usage.rows(now, mem, self.control.view.tasks.tolist()))
        self.writer.drain()

    async def _finish(self) -> Path:
        assert self.writer is not None
        end = self._last_now
        if self.scenario.horizon_s is not None and self._stop_now:
            end = max(end, self.scenario.horizon_s)
        latest = await asyncio.to_thread(self.store.latest)
        self._write_sample(max(end, self._last_sample_s or 0.0),
                           {name: st.sample for name, st in latest.items()})
        self.usage.close(end)
        for timer in list(self._timers):
            timer.cancel()
        for task_id in list(self._on_agent):
            self._stop_agent_task(task_id)
        self._journal.sync()
        self._release()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        for task in self.control.running() + self.control.queued():
            self._final(task)
        capacity = float(sum(n.type.cores for n in self.nodes)) * end
        busy_core_s, energy_j = self.usage.totals()
        summary = self.writer.stats.summary(busy_core_s, capacity, energy_j, end)
        record = run_record(self.scenario, "live", summary, self.usage.per_node(self.nodes))
        record["live"] = {"run": self.id, "timescale": self.options.timescale,
                          "task_kind": self.options.task_kind,
                          "agents": {e.name: e.base_url for e in self.entries},
                          "start_lag_s": _lag_figures(self._start_lags)}
        timing = {"started_at": _dt.datetime.fromtimestamp(self._t0, _dt.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "wall_s": round(self.clock() - self._t0, 3),
                  "events": self.control.events_applied}
        extra = {}
        if self.twin is not None:
            try:
                sim_summary, sim_outcomes = await asyncio.to_thread(self.twin, self.scenario)
                extra["fidelity.json"] = fidelity(summary, self._outcomes, sim_summary, sim_outcomes)
            except Exception as e:  # the live result stands without its twin
                log.error("run %s: its simulated twin failed: %s", self.id, e)
        self.result = self.writer.commit(record, timing, extra)
        self.status.state = "completed"
        self._update_status()
        return self.result

    # ------------------------------------------------------------ resume
    async def _resume(self, records: list[dict[str, Any]]) -> None:
        head = records[0]
        self._t0 = float(head["t0"])
        log.info("run %s: resuming from %d journal records", self.id, len(records) - 1)
        self._replaying = True
        try:
            for rec in records[1:]:
                if "started" in rec:
                    self._measured_start[int(rec["started"])] = float(rec["t"])
                    continue
                events = [self._event_from(e) for e in rec["ev"]]
                util = {int(i): float(u) for i, u in rec.get("u", ())}
                self._step(float(rec["t"]), events, util)
        finally:
            self._replaying = False
        # (the arrival feed goes on from the task after the last one the journal saw)
        # reconcile the tasks the control plane believes running with their agents
        now = self.now()
        for task in self.control.running():
            node, agent_id = self._on_agent[task.id]
            try:
                doc = await self.client.task(self.entries[node].base_url, agent_id)
            except AgentError as e:
                self._reported.add(agent_id)
                self._put(now, TaskFailed(task.id, f"agent unreachable on resume: {e}"))
                continue
            if doc is None:  # the start never reached it: start it now
                spec = self._spec(task, node, task.work_core_s, agent_id)
                self._spawn(self._post(task.id, node, spec))
            elif doc.get("state") != "running":
                self.task_report(doc, self.entries[node].name)
            else:
                self._learn_start(task.id, doc)
        # timers the control plane still waits for
        for i, st in enumerate(self.control.node_states):
            if st == PowerState.BOOTING:
                self._later(now, NodeBooted(i))
        self._put(now, Tick())

    def _event_from(self, rec: dict[str, Any]) -> Event:
        kind = rec["e"]
        if kind == "arrive":
            task = next(self._tasks)
            if task.id != rec["task"]:
                raise RuntimeError(f"journal: task {rec['task']} arrived, the workload gives {task.id}")
            return TaskArrived(task)
        if kind == "finish":
            return TaskFinished(int(rec["task"]))
        if kind == "fail":
            return TaskFailed(int(rec["task"]), str(rec.get("reason", "")))
        if kind == "down":
            self._online[int(rec["node"])] = False
            return NodeDown(int(rec["node"]), str(rec.get("reason", "")))
        if kind == "up":
            self._online[int(rec["node"])] = True
            return NodeUp(int(rec["node"]))
        if kind == "booted":
            return NodeBooted(int(rec["node"]))
        return Tick()

    async def cancel(self) -> None:
        """Stop the run: kill its running tasks; no result is written."""
        self.status.state = "cancelled"
        for timer in list(self._timers):
            timer.cancel()
        for task_id in list(self._on_agent):
            self._stop_agent_task(task_id)
        self._release()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

