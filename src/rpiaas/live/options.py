"""What a live run is given and what it shows: its options, its state, the agents it uses.

:class:`LiveOptions` (timescale, task kind, watch interval) come from the
request that starts the run and go into its journal's head, so a resumed run
replays as the first did; :class:`RunState` is what the master's API shows of
a run; :class:`AgentNode` is what the shell needs of a node's agent (the
master's registry entries are such, kept up to date by its poller).  A run's
id names its directory on the master: :func:`check_run_id` is its rule,
:func:`safe_run_id` turns any name into one that follows it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..model import Node
from ..store import Sample
from .hold import DEFAULT_HOLD_LIMIT_S

__all__ = ["RESULT", "RUN_ID_MAX", "RUN_ID_PATTERN", "TASK_KINDS", "AgentNode", "LiveOptions", "RunState",
           "check_run_id", "safe_run_id", "task_runner_of"]

TASK_KINDS = ("sleep", "cpu", "scenario")
RESULT = "result"
# characters: a run's tasks are named RUN.TASK.ATTEMPT on their agents, which take names of at most
# 128 characters: this leaves room for any task id and attempt
RUN_ID_MAX = 80
# a letter or digit, then letters, digits, '.', '_', '-': never '.', '..', a path or a hidden name
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_run_id(value: Any) -> str:
    """``value`` if it is a run id (:data:`RUN_ID_PATTERN`, at most :data:`RUN_ID_MAX`
    characters), else ValueError saying what is expected."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if not 0 < len(value) <= RUN_ID_MAX or not re.fullmatch(RUN_ID_PATTERN, value):
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
        raise ValueError(f"expected 1 to {RUN_ID_MAX} letters, digits, '.', '_' or '-', starting "
                         f"with a letter or digit, got {shown}")
    return value


def safe_run_id(name: str, max_len: int = RUN_ID_MAX) -> str:
    """``name`` as a run id: each run of other characters as one ``_``, what leads up to its
    first letter or digit left out, at most ``max_len`` characters; "" if nothing is left."""
    return _UNSAFE.sub("_", name).lstrip("._-")[:max_len]


@dataclass(frozen=True)
class LiveOptions:
    """How a scenario is replayed.

    :param timescale: wall seconds per scenario second (0.01: 100 times faster).
    :param task_kind: ``sleep`` (the modelled runtime, exact), ``cpu`` (real work), or
        ``scenario``: each task as its own ``kind`` says, a ``sleep`` task a sleep, any
        other real ``cpu`` work.
    :param watch_interval_s: how often running tasks are looked up on their agents.
    :param hold_limit_s: the longest the run may be held for lack of disk space before it
        stops, resumable (:mod:`.hold`).
    """

    timescale: float = 1.0
    task_kind: str = "sleep"
    watch_interval_s: float = 1.0
    hold_limit_s: float = DEFAULT_HOLD_LIMIT_S

    def __post_init__(self) -> None:
        if not (self.timescale > 0 and math.isfinite(self.timescale)):
            raise ValueError(f"timescale: expected a positive number, got {self.timescale!r}")
        if self.task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind: expected one of {', '.join(TASK_KINDS)}, "
                             f"got {self.task_kind!r}")
        if not (self.hold_limit_s > 0 and math.isfinite(self.hold_limit_s)):
            raise ValueError(f"hold_limit_s: expected a positive number, got {self.hold_limit_s!r}")


@dataclass
class RunState:
    """What the API shows of a run."""

    id: str
    state: str = "running"  # running | completed | failed | cancelled | suspended
    error: str = ""
    held: str = ""  # why the run is held (no new starts), empty while it is not
    held_s: float = 0.0  # how long it has been held now
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
