"""The simulation's fast path: one arrival or one task end, from SimPy's callback to its end.

Nearly every batch of events a simulation hands the control plane is a
single arrival or a single task end, and most runs ask the policy only where
to place a task, from a FIFO queue.  For exactly that case
(:attr:`ControlPlane.one_event <rpiaas.core.control.ControlPlane.one_event>`),
:func:`fast_path` makes two SimPy callbacks that do in one function each
what :meth:`ControlPlane.step <rpiaas.core.control.ControlPlane.step>` and the
engine's bookkeeping after it would do: the event-log records, the
reservation in the ledger and the free index, the task's end scheduled on
SimPy's queue, the node's usage and power integrated, the final task handed
to the writer.  Every value is computed by the same expressions in the same
order, so the run directory is the same to the byte (the tests run scenarios
both ways and compare).  Anything else (events at the same time, a task no
node could ever hold, a stale task end) goes the general way, through the
engine's own callbacks and :meth:`ControlPlane.step`.  A policy's failure is
raised as :meth:`ControlPlane.step` would raise it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from ..core.eventlog import ARRIVE, FINISH, START
from ..core.events import Action, Start
from ..model import PowerState, Task, TaskState
from .environment import NORMAL, Due, TaskEnd

if TYPE_CHECKING:
    from ..core.control import OneEvent
    from .engine import Simulation

__all__ = ["fast_path"]

_ON = int(PowerState.ON)
_QUEUED, _RUNNING, _COMPLETED = TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETED
_NAN = math.nan


def fast_path(sim: Simulation, one: OneEvent, arrived: Callable[[Task, float], None],
              finish_general: Callable[[Any], None],
              done: Callable[[], None]) -> tuple[Callable[[Due], None], Callable[[Any], None]]:
    """The arrival and task-end callbacks of ``sim`` (see the module's docstring).

    :param one: the control plane's parts (:attr:`ControlPlane.one_event`).
    :param arrived: the engine's general step of an arrival whose successor is scheduled.
    :param finish_general: the engine's task-end callback.
    :param done: checks whether the run is over (and stops it), after the last arrival.
    """
    control = sim.control
    ledger = control.ledger
    view = control.view
    heap, eid = sim.env.heap, sim.env.event_ids
    tasks = sim._tasks
    queue, qp, rule, choose = one.queue, one.queue_pass, one.rule, one.choose
    fifo = qp.fifo
    # the view's arrays of free cores, free memory and task counts: with the built-in fit no
    # policy reads them during a step, so the lists alone are kept and the engine brings the
    # arrays up to date (Ledger.sync_view) before anything reads them
    mirrors = rule is None
    tightest = one.tightest
    cap_cores, cap_mem = one.capacity
    rec = one.record
    speed, overhead = one.speed, one.overhead
    cf, mf, st = ledger.cf, ledger.mf, ledger.st
    cfw, mfw, tw, idw = ledger._cfw, ledger._mfw, ledger._tw, ledger._idw
    move = ledger._move
    running, running_on = ledger.running, ledger.running_on
    usage = sim.usage
    util_out = sim._util
    use = usage.taker(cf, util_out if mirrors else None)  # a node's usage and power, as take() does
    take = usage.take
    batch = sim._batch
    arrive_cbs: tuple[Callable[[Due], None], ...] = ()
    finish_cbs: tuple[Callable[[Any], None], ...] = ()

    def carry(actions: list[Action], now: float) -> None:
        """The Start actions of a FIFO pass: their ends scheduled, the changed nodes taken."""
        for a in actions:
            assert type(a) is Start  # (a FIFO pass only starts tasks)
            task, node = a.task, a.node
            end = now + overhead[node] + task.work_core_s / (task.cores * speed[node])
            heappush(heap, (end, NORMAL, next(eid), TaskEnd(task, task.epoch, end, finish_cbs)))
        changed = ledger.changed
        if changed:
            take(changed, st, cf, now, util_out)

    def arrive(ev: Due) -> None:
        task: Task = ev._value
        now = task.arrival_s
        nxt = next(tasks, None)
        if nxt is None:
            sim._arrivals_left = False
        else:
            if nxt.arrival_s < now:
                raise ValueError(f"workload not in arrival order at task {nxt.id}")
            heappush(heap, (nxt.arrival_s, NORMAL, next(eid), Due(nxt, arrive_cbs)))
        if (heap and heap[0][0] == now) or batch or task.cores > cap_cores or task.mem_mb > cap_mem:
            arrived(task, now)
            return
        try:
            view.now = now
            if rec is not None:
                rec((ARRIVE, now, task.id, 0))
            task.state = _QUEUED
            control.events_applied += 1
            if queue or qp.stuck:
                queue[task.id] = task
                if qp.stuck and qp.dirty:
                    qp.recheck_head()
                if not qp.stuck:
                    ledger.changed = []
                    actions: list[Action] = []
                    fifo(now, actions)
                    carry(actions, now)
                view.queue_length = len(queue)
            else:
                start(task, now)
                view.queue_length = len(queue)
        except Exception as e:
            control.raise_located(e, now)
        if nxt is None:
            done()

    def start(task: Task, now: float) -> None:
        """The FIFO pass of an empty queue and this one task."""
        c, m = task.cores, task.mem_mb
        if rule is not None:  # the policy's answer is this search of the free index
            found = rule(c, m)
            node = -1 if found is None else found
        else:
            node = choose(task, None, None, now)
        if node < 0:
            queue[task.id] = task
            qp.stuck = True
            qp.stuck_head = task if rule is not None or tightest(c, m) is None else None
        else:
            # Ledger.reserve and ControlPlane._start, written out
            old = cf[node]
            old_mem = mf[node]
            new = old - c
            mem = old_mem - m
            cf[node] = new
            mf[node] = mem
            move(node, old, old_mem, new, mem)
            idw[node] = _NAN
            tid = task.id
            running[tid] = task
            on_node = running_on[node]
            on_node[tid] = task
            if mirrors:
                cfw[node] = new
                mfw[node] = mem
                tw[node] = len(on_node)
            task.node = node
            task.state = _RUNNING
            task.start_s = now
            task.attempts += 1
            epoch = task.epoch = task.epoch + 1
            w = task.walltime_s
            x = overhead[node]
            run = task.work_core_s / (c * speed[node])
            task.est_end_s = now + (w if w is not None else x + run)
            if rec is not None:
                rec((START, now, tid, node))
            end = now + x + run
            heappush(heap, (end, NORMAL, next(eid), TaskEnd(task, epoch, end, finish_cbs)))
            use(node, now)
            qp.stuck = False
            qp.stuck_head = None
        if qp.dirty:
            qp.dirty.clear()

    def finish(ev: Any) -> None:
        task: Task = ev._value
        now = ev.end
        if (heap and heap[0][0] == now) or batch or task.epoch != ev.epoch:
            finish_general(ev)
            return
        try:
            view.now = now
            tid = task.id
            if rec is not None:
                rec((FINISH, now, tid, 0))
            # Ledger.release, QueuePass.freed and ControlPlane._completed, written out
            node = task.node
            del running[tid]
            on_node = running_on[node]
            del on_node[tid]
            old = cf[node]
            old_mem = mf[node]
            new = old + task.cores
            mem = old_mem + task.mem_mb
            cf[node] = new
            mf[node] = mem
            if mirrors:
                cfw[node] = new
                mfw[node] = mem
                tw[node] = len(on_node)
            if st[node] == _ON:
                move(node, old, old_mem, new, mem)
                if not on_node:
                    idw[node] = now
            if qp.stuck_head is None:
                qp.stuck = False
            else:
                qp.dirty.append(node)
            task.state = _COMPLETED
            task.end_s = now
            control.on_final(task)
            control.events_applied += 1
            if queue:
                if qp.stuck and qp.dirty:
                    qp.recheck_head()
                if not qp.stuck:
                    ledger.changed = [node]
                    actions: list[Action] = []
                    fifo(now, actions)
                    carry(actions, now)
                else:
                    use(node, now)
                view.queue_length = len(queue)
            else:
                use(node, now)
                view.queue_length = 0
        except Exception as e:
            control.raise_located(e, now)
        if not sim._arrivals_left:
            done()

    arrive_cbs = (arrive,)
    finish_cbs = (finish,)
    return arrive, finish
