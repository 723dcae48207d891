"""rpiaas: write a cloud allocation policy once, simulate it at any scale,
replay it on a Raspberry Pi testbed, and compare the runs.

The public API is what ``__all__`` lists; ``docs/api.md`` documents exactly it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.control import ControlPlane, PolicyError
from .core.events import (
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
from .core.view import ClusterView
from .inputs.source import InputError
from .model import PROFILES, ClusterSpec, Node, NodeType, PowerState, Task, TaskState
from .policy.base import SKIP, Policy, PowerPlan, Reservation, hookimpl
from .scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from .analysis.frames import RunFrames, load_run, run

__version__ = "0.1.0"

# the notebook API needs pandas (the analysis extra): imported on first use, not by ``import rpiaas``
_LAZY = {"run": "run", "load_run": "load_run", "RunFrames": "RunFrames"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from .analysis import frames

        return getattr(frames, _LAZY[name])
    raise AttributeError(f"module 'rpiaas' has no attribute {name!r}")

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
    "RunFrames",
    "Scenario",
    "Start",
    "Task",
    "TaskArrived",
    "TaskFailed",
    "TaskFinished",
    "TaskNotStarted",
    "TaskState",
    "Tick",
    "WakeAt",
    "__version__",
    "hookimpl",
    "load_run",
    "load_scenario",
    "run",
]
