"""Events the shells feed to the control plane, and actions it hands back.

A shell (simulated or live) stamps a batch of events with the time ``now`` and
calls :meth:`rpiaas.core.control.ControlPlane.step`.  Within one batch events are
applied in a fixed order, the same in both shells: by ``RANK`` (starts that never
happened, then node failures, then task ends, then nodes coming up, then arrivals,
then ticks), then by task or node id.  So at equal times finishes free resources before arrivals ask
for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Task

__all__ = [
    "Action",
    "Event",
    "Kill",
    "Migrate",
    "NodeBooted",
    "NodeDown",
    "NodeUp",
    "PowerOff",
    "PowerOn",
    "Reject",
    "Start",
    "TaskArrived",
    "TaskFailed",
    "TaskFinished",
    "TaskNotStarted",
    "Tick",
    "WakeAt",
    "event_order",
]


# ---------------------------------------------------------------- events
class Event:
    """Base class of events; ``RANK`` orders events of one batch."""

    __slots__ = ()
    RANK = 9

    def key(self) -> int:
        return 0


@dataclass(slots=True)
class TaskNotStarted(Event):
    """A started task's start never reached its node (the live shell could not deliver it):
    the attempt did not happen, and the task goes back to the queue without spending a
    retry.  It comes before everything else of its batch, so a ``NodeDown`` of the same
    node in that batch does not count the attempt as lost with the node.  A simulation
    never sends it."""

    task_id: int
    reason: str = ""
    RANK = -1

    def key(self) -> int:
        return self.task_id


@dataclass(slots=True)
class NodeDown(Event):
    """A node failed or became unreachable; its running tasks are lost."""

    node: int
    reason: str = ""
    RANK = 0

    def key(self) -> int:
        return self.node


@dataclass(slots=True)
class TaskFinished(Event):
    """A running task completed."""

    task_id: int
    RANK = 1

    def key(self) -> int:
        return self.task_id


@dataclass(slots=True)
class TaskFailed(Event):
    """A running task ended in error."""

    task_id: int
    reason: str = ""
    RANK = 1

    def key(self) -> int:
        return self.task_id


@dataclass(slots=True)
class NodeUp(Event):
    """A node that was down is reachable again (and on)."""

    node: int
    RANK = 2

    def key(self) -> int:
        return self.node


@dataclass(slots=True)
class NodeBooted(Event):
    """A node that was powered on finished booting."""

    node: int
    RANK = 2

    def key(self) -> int:
        return self.node


@dataclass(slots=True)
class TaskArrived(Event):
    """A task was submitted."""

    task: Task
    RANK = 3

    def key(self) -> int:
        return self.task.id


@dataclass(slots=True)
class Tick(Event):
    """A wake-up the policy asked for (``WakeAt``) or a periodic tick."""

    RANK = 4


def event_order(event: Event) -> tuple[int, int]:
    """Sort key of the documented tie order within one batch."""
    return (event.RANK, event.key())


# ---------------------------------------------------------------- actions
class Action:
    """Base class of actions the control plane asks a shell to carry out."""

    __slots__ = ()


@dataclass(slots=True)
class Start(Action):
    """Run ``task`` on node index ``node`` (resources are already reserved)."""

    task: Task
    node: int


@dataclass(slots=True)
class Reject(Action):
    """``task`` will never run; ``reason`` says why."""

    task: Task
    reason: str


@dataclass(slots=True)
class Kill(Action):
    """Stop a running task (its resources are already released)."""

    task: Task


@dataclass(slots=True)
class Migrate(Action):
    """Move a running task to another node.

    Policies return ``Migrate(task, node)`` from ``rpiaas_rebalance``; the
    control plane fills ``source`` when it accepts it.
    """

    task: Task
    node: int
    source: int = -1


@dataclass(slots=True)
class PowerOn(Action):
    """Boot a node that is off."""

    node: int


@dataclass(slots=True)
class PowerOff(Action):
    """Switch off an idle node."""

    node: int


@dataclass(slots=True)
class WakeAt(Action):
    """Deliver a ``Tick`` at ``time_s`` (policies never sleep)."""

    time_s: float
