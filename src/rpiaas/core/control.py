"""The control plane: events in, actions out.

Synchronous and deterministic; it knows nothing of SimPy or HTTP.  A shell
calls :meth:`ControlPlane.step` with a batch of events stamped ``now``; the
control plane applies them in the documented order (:mod:`rpiaas.core.events`),
runs a scheduling pass over its queue asking the policy hooks, lets the
policy rebalance and manage power, writes every event and action to the event
log, and returns the actions for the shell to carry out.

It owns the queue and, in its :class:`~rpiaas.core.ledger.Ledger`, the reservations:
a started task's cores and memory are taken from its node at once and given
back when the task ends, so no node is ever overcommitted, whatever the
policy answers.  The choice of a node is :mod:`rpiaas.core.placement`'s, moves and
power changes :mod:`rpiaas.core.rebalance`'s, the decision trace
:mod:`rpiaas.core.decisions`' (given a ``trace`` sink).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, cast

import numpy as np

from ..model import Node, PowerState, Task, TaskState, job_cores, job_runtime_s
from ..policy.base import Policy, PolicyError
from ..policy.plugins import HookCall, get_plugin_manager, locate_failure
from ..workload.workflow import WorkflowOptions
from .decisions import TRACE_TOP_K, DecisionTrace, TextSink, named_impls
from .eventlog import ARRIVE, FINISH, START, EventLog, LineLog
from .events import (
    Action,
    Event,
    NodeBooted,
    NodeDown,
    NodeUp,
    Reject,
    Start,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    TaskNotStarted,
    Tick,
    WakeAt,
    event_order,
)
from .jobs import JobPlacement
from .ledger import Ledger
from .placement import Placement
from .queuepass import QueuePass
from .rebalance import PolicyMoves
from .view import ClusterView
from .walltime import WALLTIME_REASON, Walltimes
from .workflow import Dependencies

__all__ = ["RUN_FIGURES", "TRACE_TOP_K", "ControlPlane", "PolicyError"]

#: The summary's counts of what happened to the run's nodes and attempts
#: (:meth:`ControlPlane.run_figures`), each also a line kind of ``events.jsonl``: node
#: failures and returns applied (``ev`` ``node_down``, ``node_up``: injected faults in
#: simulation, agents lost and back live), attempts queued again (``act`` ``retry``), running
#: attempts ended by a walltime, by the policy (``act`` ``kill``) or by the loss of their node,
#: and nodes switched on (``act`` ``power_on``).
RUN_FIGURES = ("faults_node_down", "faults_node_up", "retries", "kills_walltime", "kills_policy",
               "kills_node_lost", "power_ons")


_ON = int(PowerState.ON)
_QUEUED, _RUNNING, _COMPLETED = TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETED


class ControlPlane:
    """Queue, reservations, policy calls and the event log of one run.

    :param nodes: the cluster's nodes (index order).
    :param policies: policy instances; later ones are asked first.
    :param log: where ``events.jsonl`` goes (an :class:`~rpiaas.core.eventlog.EventLog`, or any
        text sink, which gets every line at once), or ``None``.
    :param trace: a text file for decision-trace lines (``decisions.jsonl``), or ``None``.
    :param on_final: called once with each task that reaches a final state.
    :param retries: how many times a failed task is queued again.
    :param initial_state: power state of every node at time 0 (default on).
    :param workflow: how tasks that wait for others (``after``) are treated
        (:mod:`rpiaas.core.workflow`); ``None``: no task waits for another.
    :param walltime_kill: kill a task still running ``walltime_s`` after its start
        (:mod:`rpiaas.core.walltime`); else ``walltime_s`` is an estimate only.
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        policies: Sequence[Policy] = (),
        *,
        log: EventLog | TextSink | None = None,
        trace: TextSink | None = None,
        on_final: Callable[[Task], None] | None = None,
        retries: int = 0,
        initial_state: Sequence[PowerState] | None = None,
        workflow: WorkflowOptions | None = None,
        walltime_kill: bool = False,
    ) -> None:
        self.nodes = tuple(nodes)
        states = [int(s) for s in initial_state] if initial_state is not None else \
            [int(PowerState.ON)] * len(self.nodes)
        self._ledger = ledger = Ledger(self.nodes, states)
        # ordered by links: a dict's iteration from the front walks the slots of the tasks
        # that left it until it next grows (most of a pass's work in a long queue)
        self._queue: dict[int, Task] = collections.OrderedDict()
        self.view = view = ClusterView(self.nodes, ledger, self._queue)
        self.pm = get_plugin_manager(policies)
        self._h_admit = HookCall(self.pm, "rpiaas_admit")
        self._h_order = HookCall(self.pm, "rpiaas_queue_order")
        self._h_blocked = HookCall(self.pm, "rpiaas_blocked")
        self._h_place = HookCall(self.pm, "rpiaas_place")
        self._h_filter = HookCall(self.pm, "rpiaas_filter")
        self._h_score = HookCall(self.pm, "rpiaas_score")
        self._h_rebalance = HookCall(self.pm, "rpiaas_rebalance")
        self._h_power = HookCall(self.pm, "rpiaas_power")
        self._h_notify = HookCall(self.pm, "rpiaas_notify")
        # the event log: arrivals, starts and task ends as numbers (EventLog.record), the rest as text
        if log is not None and not hasattr(log, "record"):
            log = LineLog(log, [n.name for n in self.nodes])
        self._log = cast("EventLog | None", log)
        self._rec = self._log.record if self._log is not None else None
        self._trace = DecisionTrace(self.nodes, view, trace, self._h_filter,
                                    named_impls(self.pm, "rpiaas_filter")) if trace is not None else None
        self._placement = Placement(self.nodes, view, ledger, self.pm, self._h_place, self._h_filter,
                                    self._h_score, self._trace)
        self.on_final: Callable[[Task], None] = on_final or (lambda task: None)
        self.retries = retries
        self._flow = Dependencies(workflow) if workflow is not None else None
        self._walltimes = Walltimes() if walltime_kill else None
        self._tally: collections.Counter[str] = collections.Counter()
        self._moves = PolicyMoves(self.nodes, view, ledger, self._placement, self._h_rebalance,
                                  self._h_power, self._trace, self._write, self._release,
                                  self._killed, self._tally)

        # the largest capacities of the cluster (none of them smaller than another
        # in both resources: usually one), to reject tasks no node could ever run
        caps = {(n.type.cores, n.type.mem_mb) for n in self.nodes}
        self._capacities = sorted(
            (c, m) for c, m in caps if not any(c2 >= c and m2 >= m and (c2, m2) != (c, m) for c2, m2 in caps))
        self._running, self._running_on = ledger.running, ledger.running_on
        #: Every change of a node's reservations or power state, in order, as ``(node, time,
        #: free cores, power state)`` after it, until its one reader empties the list: the
        #: shell's :class:`~rpiaas.core.energy.NodeUsage`
        #: (:meth:`NodeUsage.follow <rpiaas.core.energy.NodeUsage.follow>`).
        self.changes: list[tuple[int, float, int, int]] = ledger.changes
        self._types = [n.type for n in self.nodes]
        self._names = [n.name for n in self.nodes]
        self.booting = 0
        self.events_applied = 0
        # a plain FIFO pass (no reordering, no blocked hook, no trace) has its own loop
        self._fifo = not (self._h_order.implemented or self._h_blocked.implemented or trace is not None)
        self._jobs = JobPlacement(view, self._placement, self._h_place, self._h_filter, self._h_score)
        self._pass = QueuePass(self.nodes, view, ledger, self._queue, self._placement,
                               self._h_order, self._h_blocked, self._trace, self._start,
                               self._write if self._log is not None else None, self._jobs, self._start_job)
        # the common cluster has one largest capacity: two comparisons per arrival
        self._largest: tuple[int, int] | None = (self._capacities[0] if len(self._capacities) == 1
                                                 else None)
        # arrive() and finish() as one event each (not through step()) when nothing but
        # placement and the queue's order is asked of the policy, untraced, and no task waits for another
        self._single = (trace is None and self._largest is not None and self._flow is None and not (
            self._h_notify.implemented or self._h_admit.implemented or self._h_rebalance.implemented
            or self._h_power.implemented))
        # no hook reads the view during a step when placement is the free index's answer and
        # nothing else is asked: reservations then keep the ledger's lists alone, and the
        # view's arrays catch up when read
        self._reads_view = not (self._single and self._placement.rule is not None and (
            self._fifo or self._queue_hooks_read_no_arrays()))
        ledger.arrays_follow = self._reads_view
        self._dispatch: dict[type, Callable[[Event, float, list[Action]], None]] = {
            TaskArrived: self._on_arrived,  # type: ignore[dict-item]
            TaskFinished: self._on_finished,  # type: ignore[dict-item]
            TaskFailed: self._on_failed,  # type: ignore[dict-item]
            TaskNotStarted: self._on_not_started,  # type: ignore[dict-item]
            NodeDown: self._on_node_down,  # type: ignore[dict-item]
            NodeUp: self._on_node_up,  # type: ignore[dict-item]
            NodeBooted: self._on_node_booted,  # type: ignore[dict-item]
            Tick: self._on_tick,
        }

    def _queue_hooks_read_no_arrays(self) -> bool:
        """Whether every ``rpiaas_queue_order`` and ``rpiaas_blocked`` of the run belongs to a
        policy that declares it reads none of the view's arrays that follow the reservations
        (:attr:`Policy.reads_arrays <rpiaas.policy.base.Policy.reads_arrays>` false)."""
        impls = [*self.pm.hook.rpiaas_queue_order.get_hookimpls(), *self.pm.hook.rpiaas_blocked.get_hookimpls()]
        return all(isinstance(i.plugin, Policy) and not type(i.plugin).reads_arrays for i in impls)

    # ------------------------------------------------------------ queries
    @property
    def ledger(self) -> Ledger:
        """Every node's resources, power state and tasks (only the control plane writes it)."""
        return self._ledger

    @property
    def may_move(self) -> bool:
        """Whether a policy may move running tasks (it implements ``rpiaas_rebalance``)."""
        return self._h_rebalance.implemented

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def running_count(self) -> int:
        return len(self._running)

    def queued(self) -> list[Task]:
        """Waiting tasks: the queue in arrival order, then those held for their predecessors."""
        if self._flow is not None:
            return list(self._queue.values()) + self._flow.held()
        return list(self._queue.values())

    def workflow_figures(self) -> dict[str, object]:
        """The summary's workflow figures (:meth:`Dependencies.figures
        <rpiaas.core.workflow.Dependencies.figures>`); empty when no task waits for another."""
        figures = self._flow.figures() if self._flow is not None else {}
        return figures if figures.get("workflow_tasks") else {}

    def run_figures(self) -> dict[str, int]:
        """The summary's counts so far (:data:`RUN_FIGURES`, in that order)."""
        return {key: self._tally[key] for key in RUN_FIGURES}

    def running(self) -> list[Task]:
        """Running tasks in start order."""
        return list(self._running.values())

    def running_on(self, node: int) -> Mapping[int, Task]:
        return self._running_on[node]

    @property
    def node_states(self) -> Sequence[int]:
        """Every node's :class:`~rpiaas.model.PowerState` value (a live list: do not change it)."""
        return self._ledger.state_list

    @property
    def node_cores_free(self) -> Sequence[int]:
        """Every node's unreserved cores (a live list: do not change it)."""
        return self._ledger.cores_free_list

    @property
    def node_mem_free_mb(self) -> Sequence[int]:
        """Every node's unreserved memory in MB (a live list: do not change it)."""
        return self._ledger.mem_free_list

    @property
    def reads_view(self) -> bool:
        """Whether a policy hook may read the view during a step.  When none does, the view's
        arrays are brought up to date when read rather than at every reservation, and a
        shell may leave the utilisation to the view too (:meth:`ClusterView.share_as_utilization
        <rpiaas.core.view.ClusterView.share_as_utilization>`)."""
        return self._reads_view

    @property
    def single_event(self) -> bool:
        """Whether :meth:`arrive` and :meth:`finish` take one event without a batch: one largest
        node capacity, no decision trace, and no policy hook but placement and the queue's
        (``rpiaas_queue_order``, ``rpiaas_blocked``)."""
        return self._single

    # ------------------------------------------------------------ the step
    def step(self, now: float, events: list[Event]) -> list[Action]:
        """Apply a batch of events stamped ``now``; return the actions to carry out.

        A policy that raises, or answers what cannot be done, stops the run with
        a :class:`PolicyError` naming the policy, the hook, the task and ``now``.
        """
        try:
            view = self.view
            view.now = now
            if len(events) > 1:
                events.sort(key=event_order)
            actions: list[Action] = []
            dispatch = self._dispatch
            if self._h_notify.implemented:
                for ev in events:
                    dispatch[type(ev)](ev, now, actions)
                    self._h_notify.all(event=ev, view=view)
            else:
                for ev in events:
                    dispatch[type(ev)](ev, now, actions)
            self.events_applied += len(events)
            if self._walltimes is not None:  # (before the release: a kill dooms what waits for it)
                self._kill_overdue(self._walltimes, now, actions)
            flow = self._flow
            if flow is not None and flow.pending:
                self._settle(now, actions)
            if self._queue:
                self._schedule(now, actions)
            if self._h_rebalance.implemented:
                self._moves.rebalance(now, actions)
                if flow is not None and flow.pending:  # a kill dooms or frees what waits for it
                    self._settle(now, actions)
                    if self._queue:
                        self._schedule(now, actions)
            if self._h_power.implemented:
                self.booting += self._moves.power(now, actions)
            return actions
        except Exception as e:
            self._fail(e, now)

    def arrive(self, task: Task, now: float) -> list[Action]:
        """``task`` arrives at ``now``: :meth:`step` of that one event, the same to the byte,
        without a batch to sort and dispatch when the policy is only asked for placement and
        the queue's order (:attr:`single_event`).  Returns the actions (the starts of the pass)."""
        largest = self._largest
        if (not self._single or largest is None or task.cores > largest[0] or task.mem_mb > largest[1]
                or task.nodes != 1):
            return self.step(now, [TaskArrived(task)])
        try:
            self.view.now = now
            if self._rec is not None:
                self._rec((ARRIVE, now, task.id, 0))
            task.state = _QUEUED
            self.events_applied += 1
            actions: list[Action] = []
            qp = self._pass
            if self._queue or qp.stuck or not self._fifo:
                self._queue[task.id] = task
                self._schedule(now, actions)
            else:
                qp.offer(task, now, actions)
            return actions
        except Exception as e:
            self._fail(e, now)

    def finish(self, task_id: int, now: float) -> list[Action]:
        """Task ``task_id`` ended well at ``now``: :meth:`step` of that one event, as
        :meth:`arrive` is.  Returns the actions (the starts of the pass)."""
        task = self._running.get(task_id)
        if not self._single or task is None:
            return self.step(now, [TaskFinished(task_id)])
        try:
            self.view.now = now
            if self._rec is not None:
                self._rec((FINISH, now, task_id, 0))
            self._completed(task, now)
            self.events_applied += 1
            actions: list[Action] = []
            if self._queue:
                self._schedule(now, actions)
            return actions
        except Exception as e:
            self._fail(e, now)

    def _schedule(self, now: float, actions: list[Action]) -> None:
        """The scheduling pass over a queue that is not empty, unless it is stuck and nothing
        it waits for was freed."""
        qp = self._pass
        if qp.stuck and qp.dirty:
            qp.recheck_head()
        if not qp.stuck:
            if self._fifo:
                qp.fifo(now, actions)
            else:
                qp.general(now, actions)

    def _fail(self, e: Exception, now: float) -> NoReturn:
        """Raise ``e``: a policy's failure as one located :class:`PolicyError` (policy, hook,
        task, time), anything else as it is."""
        if isinstance(e, PolicyError):
            raise PolicyError(f"{e} (at simulated time {now:g} s)") from e.__cause__
        failure = locate_failure(self.pm, e)
        if failure is None:
            raise e
        raise PolicyError(f"{failure} at simulated time {now:g} s") from e

    # ------------------------------------------------------------ events
    def _on_arrived(self, ev: TaskArrived, now: float, actions: list[Action]) -> None:
        task = ev.task
        rec = self._rec
        if rec is not None:
            rec((ARRIVE, now, task.id, 0))
        c, m = task.cores, task.mem_mb
        reason: str | None = None
        largest = self._largest
        if largest is not None:
            fits = c <= largest[0] and m <= largest[1]
        else:
            fits = any(c <= cc and m <= mm for cc, mm in self._capacities)
        if not fits:
            reason = "fits no node"
        elif task.nodes != 1:
            reason = self._job_fits(task)
        elif self._h_admit.implemented:
            reason = self._h_admit.first(task=task, view=self.view)
        if reason is not None:
            if self._trace is not None:
                own = not any(c <= cc and m <= mm for cc, mm in self._capacities)
                self._trace.emit({"t": now, "decision": "reject", "task": task.id,
                            "hook": "capacity" if own else "admit", "reason": str(reason)})
            self._reject(task, str(reason), now, actions)
            return
        task.state = _QUEUED
        if self._flow is not None and not self._flow.arrived(task, now):
            return  # held for its predecessors (or doomed by one): _settle sees to it
        self._queue[task.id] = task

    def _on_finished(self, ev: TaskFinished, now: float, actions: list[Action]) -> None:
        task = self._running.get(ev.task_id)
        rec = self._rec
        if task is None:
            self._write({"t": now, "ev": "finish", "task": ev.task_id, "ignored": True})
            return
        if rec is not None:
            rec((FINISH, now, task.id, 0))
        self._completed(task, now)

    def _job_fits(self, task: Task) -> str | None:
        """Why no ``task.nodes`` nodes of the cluster could ever hold the job's parts, or None."""
        ledger = self._ledger
        able = int(np.count_nonzero((ledger.cores >= task.cores) & (ledger.mem_mb >= task.mem_mb)))
        if able < task.nodes:
            return f"a job over {task.nodes} nodes; {able} nodes could hold one of its parts"
        return None

    def _completed(self, task: Task, now: float) -> None:
        """``task`` ended well at ``now``: its resources back, a stuck pass told, its row due."""
        self._ledger.release(task, now)  # _release, written out: once per task
        self._pass.freed(task.node)
        if task.nodes != 1:
            for n in task.placed[1:]:
                self._pass.freed(n)
        task.state = _COMPLETED
        task.end_s = now
        self.on_final(task)
        if self._flow is not None:
            self._flow.ended(task)

    def _on_failed(self, ev: TaskFailed, now: float, actions: list[Action]) -> None:
        task = self._running.get(ev.task_id)
        if task is None:
            self._write({"t": now, "ev": "fail", "task": ev.task_id, "ignored": True})
            return
        self._write({"t": now, "ev": "fail", "task": task.id, "reason": ev.reason})
        self._release(task, now)
        self._fail_or_retry(task, now, ev.reason)

    def _on_not_started(self, ev: TaskNotStarted, now: float, actions: list[Action]) -> None:
        """The start of a running task never reached its node: the attempt did not happen.
        Its resources come back and it waits again, its attempts as they were before it."""
        task = self._running.get(ev.task_id)
        if task is None:
            self._write({"t": now, "ev": "not_started", "task": ev.task_id, "ignored": True})
            return
        self._write({"t": now, "ev": "not_started", "task": task.id,
                     "node": self.nodes[task.node].name, "reason": ev.reason})
        self._release(task, now)
        task.attempts -= 1  # no retry spent
        self._requeue(task)

    def _requeue(self, task: Task) -> None:
        """A task whose attempt ended without its end: waiting again (a new epoch)."""
        task.epoch += 1
        task.state = TaskState.QUEUED
        task.node = -1
        task.placed = ()
        task.start_s = -1.0
        self._queue[task.id] = task

    def _fail_or_retry(self, task: Task, now: float, reason: str) -> None:
        """A running task was lost for ``reason`` (also in the event that lost it): queued
        again while it has retries left, else failed with that reason."""
        if task.attempts <= self.retries:
            self._requeue(task)
            self._tally["retries"] += 1
            self._write({"t": now, "act": "retry", "task": task.id, "attempt": task.attempts + 1})
        else:
            task.epoch += 1
            task.state = TaskState.FAILED
            task.end_s = now
            task.reason = reason
            self.on_final(task)
            if self._flow is not None:
                self._flow.ended(task)

    def _killed(self, task: Task) -> None:
        """A policy killed ``task`` (:mod:`rpiaas.core.rebalance`): its row, its descendants."""
        self.on_final(task)
        if self._flow is not None:
            self._flow.ended(task)

    def _settle(self, now: float, actions: list[Action]) -> None:
        """Queue the tasks whose predecessors all completed; cancel or fail those a
        predecessor doomed (and, in turn, what waits for them)."""
        flow = self._flow
        assert flow is not None
        while flow.pending:
            ready, flow.ready = flow.ready, []
            for task in ready:
                task.state = _QUEUED
                self._queue[task.id] = task
                flow.released(task, now)
                self._write({"t": now, "act": "release", "task": task.id})
            doomed, flow.doomed = flow.doomed, []
            for task, predecessor in doomed:
                reason = flow.reason(task, predecessor)
                if flow.on_failure == "cancel":
                    task.reason = f"cancelled: {reason}"
                    self._reject(task, task.reason, now, actions)
                else:
                    task.reason = reason
                    task.state = TaskState.FAILED
                    task.end_s = now
                    self._write({"t": now, "act": "fail", "task": task.id, "reason": reason})
                    self.on_final(task)
                    flow.ended(task)

    def _on_node_down(self, ev: NodeDown, now: float, actions: list[Action]) -> None:
        n = ev.node
        self._write({"t": now, "ev": "node_down", "node": self.nodes[n].name, "reason": ev.reason})
        lost = list(self._running_on[n].values())
        self._tally["faults_node_down"] += 1
        self._tally["kills_node_lost"] += len(lost)
        for task in lost:
            self._release(task, now)
            self._fail_or_retry(task, now, f"node lost: {self.nodes[n].name}"
                                + (f" ({ev.reason})" if ev.reason else ""))
        if self._ledger.state_list[n] == PowerState.BOOTING:
            self.booting -= 1
        self._ledger.take_off(n, int(PowerState.DOWN), now)

    def _on_node_up(self, ev: NodeUp, now: float, actions: list[Action]) -> None:
        n = ev.node
        self._write({"t": now, "ev": "node_up", "node": self.nodes[n].name})
        self._tally["faults_node_up"] += 1
        if self._ledger.state_list[n] == _ON:
            return
        if self._ledger.state_list[n] == PowerState.BOOTING:
            self.booting -= 1
        self._bring_on(n, now)

    def _on_node_booted(self, ev: NodeBooted, now: float, actions: list[Action]) -> None:
        n = ev.node
        self._write({"t": now, "ev": "booted", "node": self.nodes[n].name})
        if self._ledger.state_list[n] != PowerState.BOOTING:
            return
        self.booting -= 1
        self._bring_on(n, now)

    def _bring_on(self, n: int, now: float) -> None:
        self._ledger.bring_on(n, now)
        self._pass.freed(n)

    def _on_tick(self, ev: Event, now: float, actions: list[Action]) -> None:
        self._write({"t": now, "ev": "tick"})

    # ------------------------------------------------------------ reservations
    def _release(self, task: Task, now: float) -> None:
        self._ledger.release(task, now)
        for n in task.placed if task.nodes != 1 else (task.node,):
            self._pass.freed(n)

    def _start(self, task: Task, node: int, now: float, actions: list[Action]) -> None:
        w = task.walltime_s
        # (before the reservation: the ledger keeps running tasks by their estimated end)
        task.est_end_s = now + (w if w is not None else
                                self._types[node].runtime_s(task.work_core_s, task.cores))
        self._ledger.reserve(task, node, now)
        task.state = _RUNNING
        task.start_s = now
        task.attempts += 1
        task.epoch += 1
        rec = self._rec
        if rec is not None:
            rec((START, now, task.id, node))
        actions.append(Start(task, node))
        if self._walltimes is not None:
            deadline = self._walltimes.started(task, now)
            if deadline is not None:
                actions.append(WakeAt(deadline))

    def _kill_overdue(self, walltimes: Walltimes, now: float, actions: list[Action]) -> None:
        """Kill the tasks still running at their walltime (``walltime: kill``): not retried,
        as a second attempt would overrun too."""
        for task in walltimes.overdue(now):
            self._moves.kill(task, now, actions, WALLTIME_REASON)

    def deadlines(self) -> list[float]:
        """The walltime deadlines still to come of running tasks (none without ``walltime: kill``)."""
        return [] if self._walltimes is None else self._walltimes.pending()

    def _start_job(self, task: Task, nodes: tuple[int, ...], now: float, actions: list[Action]) -> None:
        """A parallel job starts on ``nodes`` (part by part) at ``now``: every part's cores and
        memory reserved at once; one ``Start`` on its first node (``task.placed`` names all)."""
        w = task.walltime_s
        task.est_end_s = now + (w if w is not None else job_runtime_s(
            [self._types[n] for n in nodes], task.work_core_s, job_cores(task)))
        self._ledger.reserve_job(task, nodes, now)
        task.state = _RUNNING
        task.start_s = now
        task.attempts += 1
        task.epoch += 1
        rec = self._rec
        if rec is not None:
            rec((START, now, task.id, nodes[0]))
        if self._log is not None:
            self._write({"t": now, "act": "job", "task": task.id, "nodes": [self._names[n] for n in nodes]})
        actions.append(Start(task, nodes[0]))

    def _reject(self, task: Task, reason: str, now: float, actions: list[Action]) -> None:
        task.state = TaskState.REJECTED
        task.end_s = now
        self._write({"t": now, "act": "reject", "task": task.id, "reason": reason})
        actions.append(Reject(task, reason))
        self.on_final(task)
        if self._flow is not None:
            self._flow.ended(task)

    # ------------------------------------------------------------ log
    def _write(self, record: dict[str, object]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record, separators=(",", ":")) + "\n")

