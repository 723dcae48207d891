"""rpiaas: write a cloud allocation policy once, simulate it at any scale,
replay it on a Raspberry Pi testbed, and compare the runs.

The public API is what ``__all__`` lists; ``docs/api.md`` documents exactly it.
"""

from __future__ import annotations

from .control import ControlPlane, PolicyError
from .events import (
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
from .inputs.source import InputError
from .model import PROFILES, ClusterSpec, Node, NodeType, PowerState, Task, TaskState
from .policy import SKIP, Policy, PowerPlan, Reservation, hookimpl
from .scenario import Scenario, load_scenario
from .view import ClusterView

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "SKIP",
    "ClusterSpec",
    "ClusterView",
    "ControlPlane",
    "InputError",
    "Kill",
    "Migrate",
    "Node",
    "NodeBooted",
    "NodeDown",
    "NodeType",
    "NodeUp",
    "Policy",
    "PolicyError",
    "PowerOff",
    "PowerOn",
    "PowerPlan",
    "PowerState",
    "Reject",
    "Reservation",
    "Scenario",
    "Start",
    "Task",
    "TaskArrived",
    "TaskFailed",
    "TaskFinished",
    "TaskState",
    "Tick",
    "WakeAt",
    "__version__",
    "hookimpl",
    "load_scenario",
]
