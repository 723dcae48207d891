"""The control plane: events in, actions out, one run's queue and reservations.

Synchronous and deterministic, it knows nothing of SimPy or HTTP; both shells
(:mod:`rpiaas.sim`, :mod:`rpiaas.live`) drive it through the same calls.
"""

from __future__ import annotations

from .checks import check_index_rule
from .control import ControlPlane
from .energy import NodeUsage
from .events import (
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
    TaskNotStarted,
    Tick,
    WakeAt,
)
from .shell import Shell
from .view import ClusterView

__all__ = [
    "Action",
    "ClusterView",
    "ControlPlane",
    "Event",
    "Kill",
    "Migrate",
    "NodeBooted",
    "NodeDown",
    "NodeUp",
    "NodeUsage",
    "PowerOff",
    "PowerOn",
    "Reject",
    "Shell",
    "Start",
    "TaskArrived",
    "TaskFailed",
    "TaskFinished",
    "TaskNotStarted",
    "Tick",
    "WakeAt",
    "check_index_rule",
]
