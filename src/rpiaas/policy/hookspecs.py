"""Hook specifications of rpiaas policies (pluggy project name ``rpiaas``).

A policy implements any subset of these as methods marked with
:data:`rpiaas.policy.hookimpl`.  Implementations may take fewer arguments
than the specification; specifications only ever gain arguments.  Every hook
receives a :class:`~rpiaas.core.view.ClusterView` (``view``); ``view.now`` is the
time of the decision.  Hooks must not read the wall clock, sleep, or import a
shell: the same policy runs in simulation and on the testbed.

The control plane calls the hooks in this order for each batch of events:
``rpiaas_admit`` for each arrival, then a scheduling pass over the queue in the
order of ``rpiaas_queue_order``, choosing a node per task with
``rpiaas_place``, else ``rpiaas_filter`` + ``rpiaas_score``, and consulting
``rpiaas_blocked`` when a task cannot start; then ``rpiaas_rebalance``; then
``rpiaas_power``.  ``rpiaas_notify`` sees every event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..core.events import Action, Event
    from ..core.view import ClusterView
    from ..model import Task
    from .base import PowerPlan, Reservation

hookspec = pluggy.HookspecMarker("rpiaas")


# ---------------------------------------------------------------- admission
@hookspec(firstresult=True)
def rpiaas_admit(task: Task, view: ClusterView) -> str | None:
    """Decide whether an arriving task may join the queue.

    Called once per arrival, after the control plane has checked that the
    task fits at least one node of the cluster.

    :param task: the arriving task.
    :param view: the cluster.
    :returns: ``None`` to admit, or a reason string to reject the task.
        Stops at the first non-None result.

    Example -- reject tasks of more than half a node::

        @hookimpl
        def rpiaas_admit(self, task, view):
            if task.cores > view.cores.max() // 2:
                return "too wide"
            return None
    """


# ---------------------------------------------------------------- queue
@hookspec(firstresult=True)
def rpiaas_queue_order(queue: list[Task], view: ClusterView) -> list[Task] | None:
    """Order the waiting tasks for this scheduling pass.

    Without an implementation the queue is served first come, first served.

    :param queue: waiting tasks in arrival order (a fresh list you may sort).
    :param view: the cluster.
    :returns: the tasks in the order to try them (a permutation of ``queue``),
        or ``None`` to keep arrival order.  Stops at the first non-None result.

    Example -- shortest job first::

        @hookimpl
        def rpiaas_queue_order(self, queue, view):
            return sorted(queue, key=lambda t: (t.work_core_s, t.id))
    """


@hookspec(firstresult=True)
def rpiaas_blocked(
    task: Task, view: ClusterView, now: float, reservation: Reservation | None
) -> Reservation | Any | None:
    """Decide what happens when ``task`` cannot start now.

    :param task: the task that found no node.
    :param view: the cluster.
    :param now: the time of the pass (same as ``view.now``).
    :param reservation: the reservation already made in this pass, if any.
    :returns: ``None`` to end the pass (strict order: nothing behind ``task``
        may start), :data:`rpiaas.policy.SKIP` to leave it waiting and try
        the next task, or a :class:`~rpiaas.policy.Reservation` to keep a
        node for it and let later tasks start only where they do not delay
        it (backfilling).  Only the first reservation of a pass is kept.
        Stops at the first non-None result.

    Example -- aggressive backfilling (any later task may overtake)::

        @hookimpl
        def rpiaas_blocked(self, task, view, now, reservation):
            return SKIP
    """


# ---------------------------------------------------------------- placement
@hookspec(firstresult=True)
def rpiaas_place(task: Task, view: ClusterView) -> int | list[int] | None:
    """Choose the node for ``task`` outright (its nodes, for a parallel job).

    :param task: the task to place; ``task.nodes > 1`` for a parallel job of one part
        per node (``task.parts``: each part's cores, else ``task.cores`` each).
    :param view: the cluster; ``view.fits(task)`` is the mask of nodes with room
        (for a job: room for its largest part).
    :returns: a node index (an ``int`` or a numpy integer) that is on and has room
        for the task; for a parallel job a list of ``task.nodes`` distinct such
        indices, part by part; or ``None`` to leave the choice to ``rpiaas_filter``
        and ``rpiaas_score`` (or to say no node fits when they are not
        implemented).  Anything else (a float, a bool, a string, the wrong count,
        a node twice, a node without room) stops the run with one error naming
        the policy, the hook, the task and the time; nothing is coerced.  Stops
        at the first non-None result.

    Example -- first fit::

        @hookimpl
        def rpiaas_place(self, task, view):
            idx = np.flatnonzero(view.fits(task))
            return int(idx[0]) if idx.size else None
    """


@hookspec
def rpiaas_filter(task: Task, view: ClusterView) -> npt.NDArray[np.bool_] | None:
    """Say which nodes may take ``task``.

    All implementations are called; their masks are combined with a logical
    AND, and with the mask of nodes that have room.

    :param task: the task to place.
    :param view: the cluster.
    :returns: a boolean array with one entry per node, or ``None`` for no opinion.

    Example -- keep tenant ``"gpu"`` off the Pi 3s::

        @hookimpl
        def rpiaas_filter(self, task, view):
            if task.tenant != "gpu":
                return None
            return np.array([t != "rpi3b" for t in view.type_names])
    """


@hookspec
def rpiaas_score(task: Task, view: ClusterView) -> npt.NDArray[np.float64] | None:
    """Score every node for ``task``; the highest-scoring feasible node wins.

    All implementations are called and their scores added.  Ties go to the
    lowest node index.  With no score at all, the first feasible node wins.

    :param task: the task to place.
    :param view: the cluster.
    :returns: a float array with one entry per node, or ``None`` for no opinion.

    Example -- least loaded::

        @hookimpl
        def rpiaas_score(self, task, view):
            return view.cores_free / view.cores
    """


# ---------------------------------------------------------------- rebalance
@hookspec
def rpiaas_rebalance(view: ClusterView, now: float) -> list[Action] | None:
    """Move or stop running tasks after a scheduling pass.

    All implementations are called and their actions applied in order; an
    action that no longer fits (the node is full or off) is dropped and
    logged.

    :param view: the cluster; ``view.running(node)`` lists a node's tasks.
    :param now: the time of the pass.
    :returns: a list of :class:`~rpiaas.core.events.Migrate` and
        :class:`~rpiaas.core.events.Kill` actions, or ``None``.

    Example -- drain node 0::

        @hookimpl
        def rpiaas_rebalance(self, view, now):
            return [Migrate(t, 1) for t in view.running(0).values()
                    if view.fits_node(t, 1)]
    """


# ---------------------------------------------------------------- power
@hookspec(firstresult=True)
def rpiaas_power(view: ClusterView, now: float) -> PowerPlan | None:
    """Switch nodes on and off.

    Called at the end of every batch.  Nodes to switch off must be on and
    idle (others are ignored and logged); nodes to switch on must be off.

    :param view: the cluster; ``view.idle_since_s`` tells how long nodes idled.
    :param now: the time of the batch.
    :returns: a :class:`~rpiaas.policy.PowerPlan` (``on``, ``off``, and
        ``wake_at_s``: when to be called again even if nothing happens), or
        ``None``.  Stops at the first non-None result.

    Example -- never leave a node idle::

        @hookimpl
        def rpiaas_power(self, view, now):
            idle = np.flatnonzero((view.state == 2) & (view.tasks == 0))
            return PowerPlan(off=[int(i) for i in idle])
    """


# ---------------------------------------------------------------- notification
@hookspec
def rpiaas_notify(event: Event, view: ClusterView) -> None:
    """See every event the control plane applies, after it was applied.

    For policies that learn or keep statistics.  The return value is ignored.

    :param event: a :mod:`rpiaas.core.events` event.
    :param view: the cluster.
    :returns: nothing.

    Example -- count completions per node::

        @hookimpl
        def rpiaas_notify(self, event, view):
            if isinstance(event, TaskFinished):
                self.done += 1
    """
