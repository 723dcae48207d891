"""The SimPy shell: turns control-plane actions into simulated time.

Every arrival, task end, boot and wake-up is a SimPy event scheduled at an
exact absolute time (no accumulated rounding).  Events that fall at the same
time are gathered into one batch and handed to the control plane together,
so the documented tie order (:mod:`rpiaas.core.events`) holds whatever order
SimPy would pop them in; a lone arrival or task end goes to the control
plane's single-event calls (:meth:`ControlPlane.arrive
<rpiaas.core.control.ControlPlane.arrive>`, :meth:`~rpiaas.core.control.ControlPlane.finish`).
The shell schedules what the control plane decided and nothing else: a
task's end at its node type's :meth:`~rpiaas.model.NodeType.end_s` (a
migrated task pays its new node's overhead again), boots and wake-ups; power
and energy are integrated exactly at every change (:mod:`rpiaas.core.energy`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any

from simpy.core import EmptySchedule

from ..core.control import ControlPlane
from ..core.energy import STATE_NAMES, NodeUsage
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
    TaskFinished,
    Tick,
    WakeAt,
)
from ..core.images import ImageCaches, PullDone
from ..core.shell import Shell
from ..inputs import limits
from ..model import Task, job_cores, job_end_s
from ..rundir import RunWriter, Stats
from ..rundir.metrics import rounded
from ..scenario import Scenario, rng_streams
from ..workload.bounds import check_progress
from .environment import NORMAL, URGENT, Arrival, Due, SimEnvironment, TaskEnd

__all__ = ["STATE_NAMES", "Simulation", "rng_streams"]

_CHUNK = 1_024  # SimPy steps between drains of the writer (and progress updates): the records
# drained are still in the caches (8,192 took case b's packing of records from 0.15 s to 0.56 s)
_GC_THRESHOLD = 20_000  # allocations between collections of the youngest generation, while running
_LONG_RUN_TASKS = 50_000  # a run of this many tasks hands its tables to a writer process from the start
# (the process is ready after about 0.2 s, its imports: a run of 30k tasks, KTH SP2's 28,475 jobs under
# FCFS or EASY, is nearly over by then, and would wait for it on a busy machine)


class _Stop(Exception):
    pass


class Simulation(Shell):
    """One simulated run of a scenario.

    :param scenario: what to run.
    :param writer: where the run directory goes (``None``: keep only the summary).
    :param on_task: called with every task that ends (or is left over at the end).
    :param progress: show a progress bar on runs longer than two seconds.
    :param fast: hand a lone arrival or task end to the control plane's single-event calls
        (:meth:`ControlPlane.arrive`, :meth:`ControlPlane.finish`); without, every step goes
        through :meth:`ControlPlane.step` (the same results, slower).
    """

    def __init__(self, scenario: Scenario, writer: RunWriter | None = None,
                 on_task: Callable[[Task], None] | None = None, progress: bool = False,
                 fast: bool = True) -> None:
        super().__init__()
        self.scenario = scenario
        self.writer = writer
        self.progress = progress
        self._on_task = on_task
        streams = rng_streams(scenario.seed)
        nodes = scenario.cluster.nodes
        self.nodes = nodes
        states = [scenario.initial_power] * len(nodes)
        self.stats = writer.stats if writer is not None else Stats()
        self.stats.set_nodes(nodes)
        self.control = ControlPlane(
            nodes, scenario.policies(streams["policy"]),
            log=writer.events if writer is not None and scenario.event_log else None,
            trace=writer.decisions if writer is not None else None,
            on_final=self.task_final, retries=scenario.retries, initial_state=states,
            workflow=scenario.workflow, walltime_kill=scenario.walltime == "kill")
        self.view = self.control.view
        if writer is not None:
            writer.node_names = list(self.view.names)  # the view's strings, not a copy of each
        # a task's end time is kept only for moving it (rpiaas_rebalance); without moves
        # a final task goes straight to the writer
        self._track_ends = self.control.may_move
        # container images: pulls before a task runs (rpiaas.core.images), only when the
        # scenario describes images; else nothing of them is on any path
        self.images: ImageCaches | None = None
        if scenario.images:
            self.images = ImageCaches(nodes, scenario.images)
            self.view.attach_images(self.images)
            self.start = self._start_pulling  # type: ignore[method-assign]
            self.migrate = self._migrate_pulling  # type: ignore[method-assign]
            self._do[Start] = self._start_pulling
            self._do[Migrate] = self._migrate_pulling
        if (self.images is None and not self._track_ends and on_task is None and writer is not None
                and type(self).task_final is _BASE_FINAL):  # (a subclass's own is called)
            self.control.on_final = writer.task_done
        # the view's utilisation: the reserved share of cores, written at every step while a
        # hook reads it during a step; else the view derives it when read, and the energy
        # integrator takes the control plane's changes in every few thousand events
        self._follow_each_step = self.control.reads_view
        if self._follow_each_step:
            self.usage = NodeUsage(self.control, utilization_out=self.view.utilization_sink(measured=False))
        else:
            self.view.share_as_utilization()
            self.usage = NodeUsage(self.control)
        self.env = SimEnvironment()
        self._heap = self.env.heap
        self._at = self.env.call_at
        self._eid = self.env.event_ids
        self._tasks: Iterator[Task] = scenario.workload.tasks(streams["workload"])
        self._arrivals_left = True
        self._batch: list[Event] = []
        self._ends: dict[int, float] = {}
        self._wakes: set[float] = set()
        self._faults_left = 0  # injected NodeDown/NodeUp still to come
        self._types = [n.type for n in nodes]
        self._last_sample = -1.0
        self._rows = 0  # rows of nodes.csv written
        # checked again as the run goes (the scenario's estimate may be short)
        self._max_rows = limits.SAMPLE_ROWS.value()
        self._max_time_s = limits.SIM_TIME_S.value()
        self.end_s = 0.0
        self.wall_s = 0.0
        self.notes: list[str] = []  # what the run did not apply, and why (run.json ``notes``)
        self._nodes_record: list[dict[str, Any]] | None = None  # run.json's nodes, once the run has ended
        # with a horizon the run lasts exactly that long; without, until the work is done
        self._until_done = scenario.horizon_s is None
        self._single = fast
        self._arrive_cbs: tuple[Callable[[Any], None], ...] = (self._arrive,)
        self._finish_cbs: tuple[Callable[[Any], None], ...] = (self._finish,)

    # ------------------------------------------------------------ scheduling
    def _next_arrival(self) -> None:
        task = next(self._tasks, None)
        if task is None:
            self._arrivals_left = False
            return
        if task.arrival_s < self.env.now:
            raise ValueError(f"workload not in arrival order at task {task.id}")
        heappush(self._heap, (task.arrival_s, NORMAL, next(self._eid), Arrival(task, self._arrive_cbs)))

    def _ready(self) -> bool:
        """Whether this batch is complete: no other event at the same time is pending."""
        heap = self._heap
        return not heap or heap[0][0] != self.env.now

    # ------------------------------------------------------------ callbacks
    def _arrive(self, ev: Arrival) -> None:
        arriving: Task = ev.task
        now = arriving.arrival_s  # scheduled at exactly that time: env.now
        task = next(self._tasks, None)  # _next_arrival, written out: once per task
        if task is None:
            self._arrivals_left = False
        else:
            if task.arrival_s < now:
                raise ValueError(f"workload not in arrival order at task {task.id}")
            heappush(self._heap, (task.arrival_s, NORMAL, next(self._eid), Arrival(task, self._arrive_cbs)))
        heap = self._heap
        if heap and heap[0][0] == now:  # more at this time: gather them
            self._batch.append(TaskArrived(arriving))
        elif self._batch:
            self._batch.append(TaskArrived(arriving))
            self._flush()
        elif self._single:
            self._carry(self.control.arrive(arriving, now), now)
        else:
            self._carry(self.control.step(now, [TaskArrived(arriving)]), now)

    def _finish(self, ev: TaskEnd) -> None:
        task: Task = ev.task
        now = ev.end
        current = task.epoch == ev.epoch  # else it was moved, killed or failed meanwhile
        heap = self._heap
        if heap and heap[0][0] == now:  # more at this time: gather them
            if current:
                self._batch.append(TaskFinished(task.id))
        elif self._batch:
            if current:
                self._batch.append(TaskFinished(task.id))
            self._flush()
        elif not current:
            pass
        elif self._single:
            self._carry(self.control.finish(task.id, now), now)
        else:
            self._carry(self.control.step(now, [TaskFinished(task.id)]), now)

    def _booted(self, ev: Due) -> None:
        self._batch.append(NodeBooted(ev.value))
        if self._ready():
            self._flush()

    def _fault(self, ev: Due) -> None:
        self._faults_left -= 1
        event = ev.value
        self._batch.append(event)
        if self._ready():
            self._flush()

    def _tick(self, ev: Due) -> None:
        self._wakes.discard(ev.value)
        self._batch.append(Tick())
        if self._ready():
            self._flush()

    def _horizon(self, ev: Due) -> None:
        raise _Stop

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        now = self.env.now
        self._carry(self.control.step(now, batch), now)

    def _carry(self, actions: list[Action], now: float) -> None:
        """Carry out a step's actions, follow its node changes, stop when all is done."""
        if actions:
            do = self._do
            for a in actions:
                if type(a) is Start:  # (no dispatch for the one action of nearly every step)
                    self.start(a, now)
                else:
                    do[type(a)](a, now)
        if self._follow_each_step:
            self.usage.follow()
        if not self._arrivals_left:
            self._done()

    def _done(self) -> None:
        """Stop the run if all is done: every task ended, or none can ever start."""
        c = self.control
        if self._until_done and not self._arrivals_left and not c.running_count and not c.booting and (
                not c.queue_length or not (self._wakes or self._faults_left)):
            raise _Stop

    # ------------------------------------------------------------ actions
    def start(self, action: Start, now: float) -> None:
        task, node = action.task, action.node
        if task.nodes != 1:  # a parallel job: its parts end together, at its slowest part's pace
            end = job_end_s([self._types[n] for n in task.placed], now, task.work_core_s, job_cores(task))
        else:
            end = self._types[node].end_s(now, task.work_core_s, task.cores)
        if self._track_ends:
            self._ends[task.id] = end
        heappush(self._heap, (end, NORMAL, next(self._eid), TaskEnd(task, task.epoch, end, self._finish_cbs)))

    # ------------------------------------------------------------ image pulls
    def _start_pulling(self, action: Start, now: float) -> None:
        """:meth:`start`, in a scenario with images: a container task pulls its image's
        missing layers first, and runs from the pull's end."""
        task, node = action.task, action.node
        images = self.images
        if images is None or task.image is None or task.nodes != 1:
            Simulation.start(self, action, now)
            return
        done = images.begin(task, node, now)
        if done is None:
            if self._track_ends:
                self._ends.pop(task.id, None)  # (not running yet: a move starts its pull again)
        else:
            self._run_pulled(done, node)
        self._wake_pulls(node)

    def _run_pulled(self, done: PullDone, node: int) -> None:
        task = done.task
        task.pull_s = done.pull_s
        end = self._types[node].end_s(done.end_s, task.work_core_s, task.cores)
        if self._track_ends:
            self._ends[task.id] = end
        heappush(self._heap, (end, NORMAL, next(self._eid), TaskEnd(task, task.epoch, end, self._finish_cbs)))

    def _wake_pulls(self, node: int) -> None:
        assert self.images is not None
        pulls = self.images.nodes[node]
        when = pulls.next_end_s()
        if when is not None:
            self._at(when, (node, pulls.version), self._pulled)

    def _pulled(self, ev: Due) -> None:
        node, version = ev.value
        assert self.images is not None
        if self.images.nodes[node].version == version:
            for done in self.images.settle(node, self.env.now):
                self._run_pulled(done, node)
            self._wake_pulls(node)
        if self._batch and self._ready():
            self._flush()

    def _migrate_pulling(self, action: Migrate, now: float) -> None:
        """:meth:`migrate`, in a scenario with images: a task moved while it pulls pulls
        again on its new node; one moved while it runs goes on there (its image is taken
        along: moving pulls nothing)."""
        if action.task.id in self._ends:
            Simulation.migrate(self, action, now)
        else:
            self._start_pulling(Start(action.task, action.node), now)

    def migrate(self, action: Migrate, now: float) -> None:
        task, dst, src = action.task, action.node, action.source
        left_work = max(0.0, self._ends[task.id] - now) * task.cores * self._types[src].speed
        end = self._types[dst].end_s(now, left_work, task.cores)
        self._ends[task.id] = end
        heappush(self._heap, (end, NORMAL, next(self._eid), TaskEnd(task, task.epoch, end, self._finish_cbs)))

    def power_on(self, action: PowerOn, now: float) -> None:
        self._at(now + self._types[action.node].boot_s, action.node, self._booted)

    def wake_at(self, action: WakeAt, now: float) -> None:
        when = action.time_s
        if when not in self._wakes:
            self._wakes.add(when)
            self._at(when, when, self._tick)

    def task_final(self, task: Task) -> None:
        """``task`` reached a final state (or is left over at the end): its row, ``on_task``."""
        self._ends.pop(task.id, None)
        if self.images is not None:
            self.images.release(task)
        if self.writer is not None:
            self.writer.task_done(task)
        else:
            self.stats.add(task)
        if self._on_task is not None:
            self._on_task(task)

    # ------------------------------------------------------------ node series
    def _sample(self, ev: Due) -> None:
        now = self.env.now
        self._write_sample(now)
        if self._rows > self._max_rows or now > self._max_time_s:
            check_progress(self.scenario.file, now, self._rows)
        self._at(now + self.scenario.sample_interval_s, None, self._sample, URGENT)

    def _write_sample(self, now: float) -> None:
        if self.writer is None or now == self._last_sample:
            return
        self._last_sample = now
        self._rows += len(self.nodes)
        self.usage.follow()
        memfree = self.control.node_mem_free_mb
        mem_used = [node.type.mem_mb - memfree[i] for i, node in enumerate(self.nodes)]
        self.writer.sample(self.usage.sample(now, mem_used, self.view.tasks.tolist()))

    # ------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        """Run to the end of the workload (or the horizon); return the summary."""
        wall0 = time.perf_counter()
        horizon = self.scenario.horizon_s
        if horizon is not None:
            self._at(horizon, None, self._horizon, URGENT)
        self._at(0.0, None, self._sample, URGENT)
        for fault in self.scenario.faults:
            self._at(fault.at_s, NodeDown(fault.node, fault.reason), self._fault)
            self._faults_left += 1
            if fault.down_s is not None:
                self._at(fault.at_s + fault.down_s, NodeUp(fault.node), self._fault)
                self._faults_left += 1
        if self.writer is not None and (self.scenario.workload.count or 0) >= _LONG_RUN_TASKS:
            self.writer.hand_over()  # the writer process starts while the first tasks are simulated
        self._next_arrival()
        if not self._arrivals_left and self._until_done:  # nothing to do at all
            self._at(0.0, None, lambda ev: self._flush())
        steps = self.env.steps
        bar = self._progress_bar()
        # Every task makes a few short-lived objects (events, the task itself, its records):
        # collected every 700 allocations, as by default, they would be looked at over and
        # over; a larger first threshold lets reference counting free nearly all of them first.
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], _GC_THRESHOLD), *thresholds[1:])
        try:
            while True:
                steps(_CHUNK)
                self.usage.follow()  # (a bounded log of changes)
                if self.writer is not None:
                    self.writer.drain()
                if bar is not None:
                    done = self.writer.tasks_ended if self.writer is not None else self.stats.ended
                    bar.update((done if self.scenario.workload.count else self.env.now) - bar.n)
        except (_Stop, EmptySchedule):
            pass
        finally:
            gc.set_threshold(*thresholds)
            if bar is not None:
                bar.close()
        end = self.env.now
        if horizon is not None:
            end = min(end, horizon)
        self.end_s = end
        self.notes = self._late(end)
        self.usage.close(end)
        self._write_sample(end)
        # tasks still waiting or running get their row too
        for task in self.control.running() + self.control.queued():
            self.task_final(task)
        if self.writer is not None:
            self.writer.settle()  # every row written: the totals are complete
        self.wall_s = time.perf_counter() - wall0
        capacity = float(sum(t.cores for t in self._types)) * end
        busy_core_s, energy_j = self.usage.totals()
        self._nodes_record = self.usage.per_node(self.nodes)  # (final: the summary's and run.json's)
        summary = self.stats.summary(busy_core_s, capacity, energy_j, end, power=self.usage.power_figures(),
                                     run_figures=self.control.run_figures(), nodes=self._nodes_record)
        summary.update(rounded(self.control.workflow_figures()))  # (only when a task waits for another)
        return summary

    def _late(self, end: float) -> list[str]:
        """Notes on what came after the run's end at ``end`` and was not applied: faults, the
        policy's wake-ups, tasks that had not arrived by the horizon."""
        notes = []
        for i, fault in enumerate(self.scenario.faults):
            name = self.nodes[fault.node].name
            if fault.at_s > end:
                notes.append(f"faults[{i}]: {name} down at {fault.at_s:g} s came after the run's end "
                             f"at {end:g} s: not applied")
            elif fault.down_s is not None and fault.at_s + fault.down_s > end:
                notes.append(f"faults[{i}]: {name} back up at {fault.at_s + fault.down_s:g} s came after "
                             f"the run's end at {end:g} s: it was down at the end")
        late = sorted(w for w in self._wakes if w > end)
        if late:
            notes.append(f"{len(late)} wake-up{'s' if len(late) > 1 else ''} the policy asked for "
                         f"(from {late[0]:g} s) came after the run's end at {end:g} s: not applied")
        count = self.scenario.workload.count
        if self._arrivals_left and count is not None:
            notes.append(f"the horizon at {end:g} s ended the run before every task arrived "
                         f"(workload.count {count:,})")
        return notes

    def _progress_bar(self) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        count = self.scenario.workload.count
        if count:
            return tqdm(total=count, unit="task", delay=2.0, desc=self.scenario.name, leave=False)
        return tqdm(total=self.scenario.horizon_s, unit="sim-s", delay=2.0,
                    desc=self.scenario.name, leave=False)

    def node_energy(self) -> list[dict[str, Any]]:
        """``run.json``'s ``nodes`` list: each node's energy and busy core-seconds (made once
        when the run has ended)."""
        if self._nodes_record is not None:
            return self._nodes_record
        return self.usage.per_node(self.nodes)


_BASE_FINAL = Simulation.task_final
