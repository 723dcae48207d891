"""The SimPy shell: turns control-plane actions into simulated time.

Every arrival, task end, boot and wake-up is a SimPy event scheduled at an
exact absolute time (no accumulated rounding).  Events that fall at the same
time are gathered into one batch and handed to the control plane together,
so the documented tie order (:mod:`rpiaas.events`) holds whatever order
SimPy would pop them in.  A task of ``work_core_s`` on ``cores`` cores of a
node of speed ``s`` runs ``start_overhead_s + work_core_s / (cores * s)``
seconds (a migrated task pays its new node's overhead again); power and
energy are integrated exactly at every change (:mod:`rpiaas.sim.power`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.core import EmptySchedule
from simpy.events import NORMAL, URGENT

from .. import limits
from ..bounds import check_progress
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
    TaskFinished,
    Tick,
    WakeAt,
)
from ..model import PowerState, Task
from ..results import RunWriter, Stats
from ..scenario import Scenario
from .power import PowerMeter

__all__ = ["STATE_NAMES", "Simulation", "rng_streams"]

STATE_NAMES = {int(s): s.name.lower() for s in PowerState}
_CHUNK = 20_000  # SimPy steps between progress updates


class _Stop(Exception):
    pass


class _Due:
    """A SimPy-schedulable event that is already triggered: just its callbacks.

    ``Environment.step`` needs only ``callbacks``, ``_ok`` and ``_value``;
    this is a third of the cost of a ``simpy.Event`` on the hot path.
    """

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, value: Any, callback: Callable[[Any], None]) -> None:
        self._ok = True
        self._value = value
        self.callbacks: list[Callable[[Any], None]] | None = [callback]


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """The run's generators, spawned from one seed: workload, policy and shell.

    Separate streams keep the workload identical whatever the policy draws.
    """
    workload, policy, shell = np.random.SeedSequence(seed).spawn(3)
    return {"workload": np.random.default_rng(workload), "policy": np.random.default_rng(policy),
            "shell": np.random.default_rng(shell)}


class Simulation:
    """One simulated run of a scenario.

    :param scenario: what to run.
    :param writer: where the run directory goes (``None``: keep only the summary).
    :param on_task: called with every task that ends (or is left over at the end).
    :param progress: show a progress bar on runs longer than two seconds.
    """

    def __init__(self, scenario: Scenario, writer: RunWriter | None = None,
                 on_task: Callable[[Task], None] | None = None, progress: bool = False) -> None:
        self.scenario = scenario
        self.writer = writer
        self.progress = progress
        self._on_task = on_task
        streams = rng_streams(scenario.seed)
        nodes = scenario.cluster.nodes
        self.nodes = nodes
        states = [scenario.initial_power] * len(nodes)
        self.stats = writer.stats if writer is not None else Stats()
        if writer is not None:
            writer.node_names = [n.name for n in nodes]
        self.control = ControlPlane(
            nodes, scenario.policies(streams["policy"]),
            log=writer.events if writer is not None and scenario.event_log else None,
            trace=writer.decisions if writer is not None else None,
            on_final=self._final, retries=scenario.retries, initial_state=states)
        self.view = self.control.view
        self.meter = PowerMeter(nodes, [int(s) for s in states])
        self.env = simpy.Environment()
        self._queue = self.env._queue
        self._eid = self.env._eid
        self._tasks: Iterator[Task] = scenario.workload.tasks(streams["workload"])
        self._arrivals_left = True
        self._batch: list[Event] = []
        self._touched: list[int] = []
        self._ends: dict[int, float] = {}
        self._wakes: set[float] = set()
        self._faults_left = 0  # injected NodeDown/NodeUp still to come
        self._speed = [n.type.speed for n in nodes]
        self._overhead = [n.type.start_overhead_s for n in nodes]
        self._boot_s = [n.type.boot_s for n in nodes]
        self._cores = [n.type.cores for n in nodes]
        self._names = [n.name for n in nodes]
        self._last_sample = -1.0
        self._rows = 0  # rows of nodes.csv written
        # checked again as the run goes (the scenario's estimate may be short)
        self._max_rows = limits.SAMPLE_ROWS.value()
        self._max_time_s = limits.SIM_TIME_S.value()
        self.end_s = 0.0
        self.wall_s = 0.0
        # with a horizon the run lasts exactly that long; without, until the work is done
        self._until_done = scenario.horizon_s is None

    # ------------------------------------------------------------ scheduling
    def _at(self, t: float, value: Any, callback: Callable[[_Due], None],
            priority: int = NORMAL) -> None:
        """Schedule ``callback`` at absolute time ``t`` (exact, no now + delay rounding)."""
        heappush(self._queue, (t, priority, next(self._eid), _Due(value, callback)))  # type: ignore[misc]

    def _next_arrival(self) -> None:
        task = next(self._tasks, None)
        if task is None:
            self._arrivals_left = False
            return
        if task.arrival_s < self.env._now:
            raise ValueError(f"workload not in arrival order at task {task.id}")
        self._at(task.arrival_s, task, self._arrive)

    def _ready(self) -> bool:
        """Whether this batch is complete: no other event at the same time is pending."""
        q = self._queue
        return not q or q[0][0] != self.env._now

    # ------------------------------------------------------------ callbacks
    def _arrive(self, ev: _Due) -> None:
        self._batch.append(TaskArrived(ev._value))
        self._next_arrival()
        if self._ready():
            self._flush()

    def _finish(self, ev: _Due) -> None:
        task, epoch = ev._value
        if task.epoch == epoch:  # else it was moved, killed or failed meanwhile
            self._batch.append(TaskFinished(task.id))
            self._touched.append(task.node)
        if self._batch and self._ready():
            self._flush()

    def _booted(self, ev: _Due) -> None:
        self._batch.append(NodeBooted(ev._value))
        self._touched.append(ev._value)
        if self._ready():
            self._flush()

    def _fault(self, ev: _Due) -> None:
        self._faults_left -= 1
        event = ev._value
        self._batch.append(event)
        self._touched.append(event.node)
        if self._ready():
            self._flush()

    def _tick(self, ev: _Due) -> None:
        self._wakes.discard(ev._value)
        self._batch.append(Tick())
        if self._ready():
            self._flush()

    def _horizon(self, ev: _Due) -> None:
        raise _Stop

    def _flush(self) -> None:
        batch = self._batch
        self._batch = []
        now = self.env._now
        actions = self.control.step(now, batch)
        touched = self._touched
        for a in actions:
            self._carry_out(a, now, touched)
        if touched:
            meter_update = self.meter.update
            state = self.control._st
            free = self.control._cf
            util = self.view._utilization
            cores = self._cores
            for n in touched:
                used = cores[n] - free[n]
                util[n] = used / cores[n]
                meter_update(n, now, state[n], used)
            touched.clear()
        c = self.control
        if self._until_done and not self._arrivals_left and not c.running_count and not c.booting and (
                not c.queue_length or not (self._wakes or self._faults_left)):
            raise _Stop

    def _carry_out(self, a: Action, now: float, touched: list[int]) -> None:
        t = type(a)
        if t is Start:
            task, node = a.task, a.node  # type: ignore[attr-defined]
            end = now + self._overhead[node] + task.work_core_s / (task.cores * self._speed[node])
            self._ends[task.id] = end
            self._at(end, (task, task.epoch), self._finish)
            touched.append(node)
        elif t is Reject:
            pass
        elif t is Kill:
            touched.append(a.task.node)  # type: ignore[attr-defined]
        elif t is Migrate:
            task, dst, src = a.task, a.node, a.source  # type: ignore[attr-defined]
            left_work = max(0.0, self._ends[task.id] - now) * task.cores * self._speed[src]
            end = now + self._overhead[dst] + left_work / (task.cores * self._speed[dst])
            self._ends[task.id] = end
            self._at(end, (task, task.epoch), self._finish)
            touched.append(src)
            touched.append(dst)
        elif t is PowerOn:
            node = a.node  # type: ignore[attr-defined]
            self._at(now + self._boot_s[node], node, self._booted)
            touched.append(node)
        elif t is PowerOff:
            touched.append(a.node)  # type: ignore[attr-defined]
        elif t is WakeAt:
            when = a.time_s  # type: ignore[attr-defined]
            if when not in self._wakes:
                self._wakes.add(when)
                self._at(when, when, self._tick)
        else:  # pragma: no cover
            raise TypeError(f"unknown action {a!r}")

    def _final(self, task: Task) -> None:
        self._ends.pop(task.id, None)
        if self.writer is not None:
            self.writer.task_ended(task)
        else:
            self.stats.add(task)
        if self._on_task is not None:
            self._on_task(task)

    # ------------------------------------------------------------ node series
    def _sample(self, ev: _Due) -> None:
        now = self.env._now
        self._write_sample(now)
        if self._rows > self._max_rows or now > self._max_time_s:
            check_progress(self.scenario.file, now, self._rows)
        self._at(now + self.scenario.sample_interval_s, None, self._sample, URGENT)

    def _write_sample(self, now: float) -> None:
        if self.writer is None or now == self._last_sample:
            return
        self._last_sample = now
        self._rows += len(self.nodes)
        v = self.view
        m = self.meter
        state = v._state.tolist()
        free = v._cores_free.tolist()
        memfree = v._mem_free_mb.tolist()
        ntasks = v._tasks.tolist()
        lines = []
        for i, node in enumerate(self.nodes):
            used = self._cores[i] - free[i]
            lines.append(
                f"{now!r},{self._names[i]},{STATE_NAMES[state[i]]},{used},"
                f"{node.type.mem_mb - memfree[i]},{used / self._cores[i]!r},{m.power_w[i]!r},"
                f"{m.energy_at(i, now)!r},{ntasks[i]}\n")
        self.writer.nodes.write("".join(lines))

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
        self._next_arrival()
        if not self._arrivals_left and self._until_done:  # nothing to do at all
            self._at(0.0, None, lambda ev: self._flush())
        step = self.env.step
        bar = self._progress_bar()
        try:
            while True:
                for _ in range(_CHUNK):
                    step()
                if self.writer is not None:
                    self.writer.drain()
                if bar is not None:
                    done = self.stats.ended
                    bar.update((done if self.scenario.workload.count else self.env._now) - bar.n)
        except (_Stop, EmptySchedule):
            pass
        finally:
            if bar is not None:
                bar.close()
        end = self.env._now
        if horizon is not None:
            end = min(end, horizon)
        self.end_s = end
        self.meter.close(end)
        self._write_sample(end)
        # tasks still waiting or running get their row too
        for task in self.control.running() + self.control.queued():
            self._final(task)
        self.wall_s = time.perf_counter() - wall0
        capacity = float(sum(self._cores)) * end
        return self.stats.summary(sum(self.meter.busy_core_s), capacity,
                                  sum(self.meter.energy_j), end)

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
        return [{"node": n.name, "type": n.type.name, "energy_j": float(f"{e:.12g}"),
                 "busy_core_s": float(f"{b:.12g}")}
                for n, e, b in zip(self.nodes, self.meter.energy_j, self.meter.busy_core_s, strict=True)]

