"""The scheduling pass: the queue offered to the policy, task by task, once per step.

:class:`QueuePass` walks the waiting tasks (in arrival order, or the order
``rpiaas_queue_order`` gives), asks :class:`~rpiaas.core.placement.Placement` for
a node for each, starts those that get one and, at the first that does not,
asks ``rpiaas_blocked`` whether to wait, skip it or reserve a node for it.

A strict pass that stopped at its head stays stopped until something is
freed (:meth:`QueuePass.freed`); if no node that is on could hold the head at
all, only a freed node that now can (``dirty``) restarts it, so a long queue
blocked for room costs nothing per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from ..model import Node, PowerState, Task, TaskState
from ..policy.base import SKIP, Policy, PolicyError, Reservation
from ..policy.plugins import HookCall
from .decisions import DecisionTrace
from .events import Action
from .jobs import JobPlacement
from .ledger import Ledger
from .placement import Placement
from .view import ClusterView

__all__ = ["QueuePass"]


def _skips_when_reserved(placement: Placement) -> bool:
    """Whether the run's one ``rpiaas_blocked`` declares it answers SKIP once a reservation
    is held (:attr:`Policy.skips_when_reserved <rpiaas.policy.base.Policy.skips_when_reserved>`)."""
    impls = placement.pm.hook.rpiaas_blocked.get_hookimpls()
    return (len(impls) == 1 and isinstance(impls[0].plugin, Policy)
            and type(impls[0].plugin).declared_skips_when_reserved())

_ON = int(PowerState.ON)
_QUEUED = TaskState.QUEUED


class QueuePass:
    """The control plane's scheduling pass over its queue (see the module's docstring).

    :param queue: the control plane's waiting tasks by id, in arrival order.
    :param start: starts a task on a node (the control plane's: reservation, log, action).
    :param write: writes one event-log record (None: the run keeps no event log).
    :param jobs: the placement of parallel jobs (a task over ``nodes`` > 1).
    :param start_job: starts a job on its nodes (the control plane's).
    """

    def __init__(self, nodes: tuple[Node, ...], view: ClusterView, ledger: Ledger,
                 queue: dict[int, Task], placement: Placement, order_hook: HookCall,
                 blocked_hook: HookCall, trace: DecisionTrace | None,
                 start: Callable[[Task, int, float, list[Action]], None],
                 write: Callable[[dict[str, object]], None] | None, jobs: JobPlacement,
                 start_job: Callable[[Task, tuple[int, ...], float, list[Action]], None]) -> None:
        self.nodes = nodes
        self.view = view
        self._queue = queue
        self._placement = placement
        self._choose = placement.choose
        self._rule = placement.rule
        self._h_order = order_hook
        self._h_blocked = blocked_hook
        self._blocked = blocked_hook.caller("task", "view", "now", "reservation")
        self._trace = trace
        self._start = start
        self._write = write
        self._jobs = jobs
        self._names = [n.name for n in nodes]
        self._start_job = start_job
        self._index = ledger.index
        # once the pass holds a reservation, a blocked task is skipped without asking the hook
        self._skip_reserved = _skips_when_reserved(placement)
        self._cf, self._mf, self._st = ledger.cores_free_list, ledger.mem_free_list, ledger.state_list
        self.stuck = False
        self.stuck_head: Task | None = None
        self.dirty: list[int] = []

    def freed(self, n: int) -> None:
        """Resources on node ``n`` were freed or it came up: a stuck pass may go on."""
        if self.stuck_head is None:
            self.stuck = False
        else:
            self.dirty.append(n)

    def recheck_head(self) -> None:
        head = self.stuck_head
        assert head is not None
        c, m = head.cores, head.mem_mb
        cf, mf, st = self._cf, self._mf, self._st
        for n in self.dirty:
            if st[n] == _ON and cf[n] >= c and mf[n] >= m:
                self.stuck = False
                self.stuck_head = None
                break
        self.dirty.clear()

    def offer(self, task: Task, now: float, actions: list[Action]) -> None:
        """:meth:`fifo` of an empty queue and the one task just arrived, without putting it
        in the queue first: it starts, or it waits and the pass stops at it."""
        rule = self._rule
        if rule is not None:
            found = rule(task.cores, task.mem_mb)
            node = -1 if found is None else found
        else:
            node = self._choose(task, None, None, now)
        if node < 0:
            self._queue[task.id] = task
            self.stuck = True
            self.stuck_head = task if rule is not None or not self._index.fits(
                task.cores, task.mem_mb) else None
        else:
            self._start(task, node, now, actions)
            self.stuck = False
            self.stuck_head = None
        if self.dirty:
            self.dirty.clear()

    def fifo(self, now: float, actions: list[Action]) -> None:
        """:meth:`general` without a queue order, a blocked hook or a trace: the
        queue in arrival order until the first task that cannot start."""
        queue = self._queue
        rule = self._rule
        if rule is not None:
            # a policy that answers with a free-index search (Placement.rule): that one
            # search per task both places it and, when it finds nothing, says no node
            # has room, so the head is blocked for room
            start = self._start
            done: list[int] = []
            head: Task | None = None
            for task in queue.values():
                if task.state is not _QUEUED:
                    raise PolicyError(f"rpiaas_queue_order returned task {task.id}, which is not waiting")
                if task.nodes != 1:
                    if not self._job(task, None, None, now, actions):
                        head = task
                        break
                    done.append(task.id)
                    continue
                node = rule(task.cores, task.mem_mb)
                if node is None:
                    head = task
                    break
                start(task, node, now, actions)
                done.append(task.id)
            for tid in done:
                del queue[tid]
            self.stuck = head is not None
            self.stuck_head = head
            if self.dirty:
                self.dirty.clear()
            return
        choose = self._choose
        fits = self._index.fits
        started: list[int] = []
        stuck = False
        room: bool | None = None
        first = True
        for task in queue.values():
            if task.state is not _QUEUED:
                raise PolicyError(f"rpiaas_queue_order returned task {task.id}, which is not waiting")
            if not first and not fits(task.cores, task.mem_mb):
                room = False
                stuck = True
                break
            first = False
            if task.nodes != 1:
                if not self._job(task, None, None, now, actions):
                    stuck = True
                    break
                started.append(task.id)
                continue
            node = choose(task, None, None, now)
            if node < 0:
                stuck = True
                break
            self._start(task, node, now, actions)
            started.append(task.id)
        for tid in started:
            del queue[tid]
        self.stuck = stuck
        self.stuck_head = None
        if self.dirty:
            self.dirty.clear()
        if stuck:
            head = next(iter(queue.values()))
            if room is False or not self._index.fits(head.cores, head.mem_mb):
                self.stuck_head = head  # blocked for room, not by the policy

    def _backfill(self, rest: Iterable[Task], res: Reservation, head: Task, now: float,
                  actions: list[Action], started: list[int]) -> None:
        """The rest of an untraced :meth:`general` pass once it holds the reservation ``res``
        for ``head`` and the blocked hook declares it skips from then on: a task starts if
        some node has room and the placement keeps the reservation; the others wait, and
        one wider than the most free cores of any node, or a job of more parts than there
        are nodes with a free core, is passed over at a comparison."""
        index = self._index
        fits, most_free, count_from = index.fits, index.most_free, index.count_from
        choose, start = self._choose, self._start
        top = most_free()
        spread = -1  # nodes with a free core, counted when a job first asks
        for task in rest:
            if task.state is not _QUEUED:
                raise PolicyError(f"rpiaas_queue_order returned task {task.id}, which is not waiting")
            cores = task.cores
            if cores > top:
                continue
            if task.nodes != 1:  # a parallel job: all its nodes at once, or none
                if spread < 0:
                    spread = count_from(1)
                if task.nodes > spread and cores > 0:
                    continue
                if self._job(task, res, head, now, actions):
                    started.append(task.id)
                    top, spread = most_free(), -1
                continue
            if not fits(cores, task.mem_mb):
                continue
            node = choose(task, res, head, now)
            if node >= 0:
                self._spend(res, head, task, node, now)
                start(task, node, now, actions)
                started.append(task.id)
                top, spread = most_free(), -1

    def _job(self, task: Task, res: Reservation | None, head: Task | None, now: float,
             actions: list[Action]) -> bool:
        """Start parallel job ``task`` if its nodes are found; whether it started."""
        found = self._jobs.choose(task, res, head, now)
        if found is None:
            return False
        nodes, spent = found
        self._placement.spare -= spent  # the spare nodes of the reservation it takes
        self._start_job(task, nodes, now, actions)
        return True

    def _spend(self, res: Reservation | None, head: Task | None, task: Task, node: int, now: float) -> None:
        """``task`` starts on ``node``: the spare node of a job's reservation it takes (one
        where it would delay the job) is spent.  (A job's are counted by its placement.)"""
        pl = self._placement
        if pl.spare and res is not None and head is not None:
            pl.spare -= len(pl.delaying(res, head, task, (node,), now))

    def general(self, now: float, actions: list[Action]) -> None:
        queue = self._queue
        view = self.view
        order: Iterable[Task]
        if self._h_order.implemented:
            ordered = self._h_order.first(queue=list(queue.values()), view=view)
            order = ordered if ordered is not None else list(queue.values())
        else:
            order = queue.values()
        started: list[int] = []
        reservation: Reservation | None = None
        reserved_for: Task | None = None
        stuck = False
        room: bool | None = None  # whether the last task tried fits any node at all
        blocked_hook = self._h_blocked
        skip_reserved = self._skip_reserved
        index = self._index
        fits = index.fits
        trace = self._trace
        rec: dict[str, Any] | None = None
        first = True
        self._placement.forget()
        self._placement.spare = 0
        rest = iter(order)
        for task in rest:
            if task.state is not _QUEUED:
                raise PolicyError(f"rpiaas_queue_order returned task {task.id}, which is not waiting")
            if trace is not None:
                rec = {"t": now, "decision": "place", "task": task.id}
            # Past the first task of a pass, a long queue is usually blocked for
            # room: the free index answers "fits no node" at once (a task wider than
            # the most free cores) or in logarithmic time, cheaper than asking the
            # policy, and no policy could place it.
            if not first and not fits(task.cores, task.mem_mb):
                node, room = -1, False
                if rec is not None:
                    rec.update(hook="index", reason="no room", candidates=0)
            elif task.nodes != 1:  # a parallel job: all its nodes at once, or none
                first, room = False, None
                if self._job(task, reservation, reserved_for, now, actions):
                    if rec is not None:
                        rec.update(hook="job", nodes=[self._names[n] for n in task.placed])
                        cast(DecisionTrace, trace).placed(rec, task.node)
                    started.append(task.id)
                    continue
                node = -1
                if rec is not None:
                    rec.update(hook="job", reason="no room or declined")
            else:
                node, room = self._choose(task, reservation, reserved_for, now, rec), None
            first = False
            if node >= 0:
                if rec is not None:
                    cast(DecisionTrace, trace).placed(rec, node)
                if reservation is not None:
                    self._spend(reservation, reserved_for, task, node, now)
                self._start(task, node, now, actions)
                started.append(task.id)
                continue
            if reservation is not None and skip_reserved:
                answer = SKIP  # what the hook declares it answers (Policy.skips_when_reserved)
            elif blocked_hook.implemented:
                answer = self._blocked(task, view, now, reservation)
            else:
                answer = None
            if answer is not None and answer is not SKIP and not isinstance(answer, Reservation):
                raise PolicyError(f"rpiaas_blocked returned {answer!r}; expected None, SKIP or a Reservation")
            if rec is not None:
                cast(DecisionTrace, trace).blocked(rec, answer, reservation)
            if answer is None:
                stuck = True
                break
            if answer is SKIP:
                continue
            if reservation is not None:
                continue  # only the first reservation of a pass is kept
            reservation, reserved_for = answer, task
            # a job's reservation lists every node with room by its start: those beyond the
            # job's own count are spare, open to tasks that end later
            self._placement.spare = max(0, len(answer.nodes) - task.nodes) if answer.nodes else 0
            if self._write is not None:
                record: dict[str, object] = {"t": now, "act": "reserve", "task": task.id,
                                             "node": self.nodes[answer.node].name, "start_s": answer.start_s}
                if answer.nodes:  # kept for a parallel job: every node of it
                    record["nodes"] = [self._names[n] for n in answer.nodes]
                self._write(record)
            if skip_reserved and trace is None:
                self._backfill(rest, answer, task, now, actions, started)
                break
        for tid in started:
            del queue[tid]
        # a strict pass blocked at the head stays blocked until something is
        # freed, unless the policy may reorder the queue
        self.stuck = stuck and not self._h_order.implemented
        self.stuck_head = None
        self.dirty.clear()
        if self.stuck:
            head = next(iter(queue.values()))
            if room is False or (room is None and not fits(head.cores, head.mem_mb)):
                self.stuck_head = head  # blocked for room, not by the policy
