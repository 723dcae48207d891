"""rpiaas: write a cloud allocation policy once, simulate it at any scale,
replay it on a Raspberry Pi testbed, and compare the runs.

The public API is what ``__all__`` lists; ``docs/api.md`` documents exactly it.
Each name is imported from its module on first use, so ``import rpiaas`` (and
every ``rpiaas`` command, whose package this is) costs only what is used:
``rpiaas --version`` imports neither numpy nor the control plane.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis.frames import RunFrames, load_run, run
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

__version__ = "0.1.0"

# where each public name lives; the notebook API (analysis.frames) needs pandas, the analysis extra
_HOMES = {
    **dict.fromkeys(("ControlPlane", "PolicyError"), "core.control"),
    **dict.fromkeys(("Kill", "Migrate", "NodeBooted", "NodeDown", "NodeUp", "PowerOff", "PowerOn", "Reject",
                     "Start", "TaskArrived", "TaskFailed", "TaskFinished", "TaskNotStarted", "Tick", "WakeAt"),
                    "core.events"),
    "ClusterView": "core.view",
    "InputError": "inputs.source",
    **dict.fromkeys(("PROFILES", "ClusterSpec", "Node", "NodeType", "PowerState", "Task", "TaskState"), "model"),
    **dict.fromkeys(("SKIP", "Policy", "PowerPlan", "Reservation", "hookimpl"), "policy.base"),
    **dict.fromkeys(("Scenario", "load_scenario"), "scenario"),
    **dict.fromkeys(("run", "load_run", "RunFrames"), "analysis.frames"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rpiaas' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
