"""What a live run is given and what it shows: its options, its state, the agents it uses.

:class:`LiveOptions` (timescale, task kind, watch interval) come from the
request that starts the run and go into its journal's head, so a resumed run
replays as the first did; :class:`RunState` is what the master's API shows of
a run; :class:`AgentNode` is what the shell needs of a node's agent (the
master's registry entries are such, kept up to date by its poller).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..model import Node
from ..store import Sample

__all__ = ["RESULT", "TASK_KINDS", "AgentNode", "LiveOptions", "RunState", "task_runner_of"]

TASK_KINDS = ("sleep", "cpu", "scenario")
RESULT = "result"


@dataclass(frozen=True)
class LiveOptions:
    """How a scenario is replayed.

    :param timescale: wall seconds per scenario second (0.01: 100 times faster).
    :param task_kind: ``sleep`` (the modelled runtime, exact), ``cpu`` (real work), or
        ``scenario``: each task as its own ``kind`` says, a ``sleep`` task a sleep, any
        other real ``cpu`` work.
    :param watch_interval_s: how often running tasks are looked up on their agents.
    """

    timescale: float = 1.0
    task_kind: str = "sleep"
    watch_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.timescale > 0 and math.isfinite(self.timescale)):
            raise ValueError(f"timescale: expected a positive number, got {self.timescale!r}")
        if self.task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind: expected one of {', '.join(TASK_KINDS)}, "
                             f"got {self.task_kind!r}")


@dataclass
class RunState:
    """What the API shows of a run."""

    id: str
    state: str = "running"  # running | completed | failed | cancelled
    error: str = ""
    arrived: int = 0
    ended: int = 0
    queued: int = 0
    running: int = 0
    now_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AgentNode(Protocol):
    """A node's agent as the master's poller keeps it up to date (its registry entry)."""

    # set by a live run that switches the node: off | booting | on | unknown | failed
    power_state: str | None
    booting_since_s: float | None  # unix time of the switch-on, until the boot report

    @property
    def node(self) -> Node:
        """The node as the master's cluster config has it (its power driver included)."""
        ...

    @property
    def name(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def online(self) -> bool | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def sample(self) -> Sample | None: ...
    @property
    def task_runner(self) -> str | None:
        """What a task is on its agent: ``process``, ``timer`` (emulated), None before it answered."""
        ...
    def node_to_local(self, node_time_s: float) -> float:
        """A time read on the node's own clock, on the master's (their offset taken out)."""
        ...


def task_runner_of(entries: Sequence[AgentNode]) -> str:
    """What the run's tasks were on its agents, for ``run.json``'s ``live.task_runner``:
    ``process`` (a process group each), ``timer`` (emulated nodes: a timer of the process that
    serves them, see ``rpiaas testbed up --emulated``), ``mixed``, or ``unknown``."""
    seen = {e.task_runner or "unknown" for e in entries}
    return seen.pop() if len(seen) == 1 else "mixed" if seen else "unknown"
