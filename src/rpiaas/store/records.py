"""What a history store keeps: samples, state changes, events, and query results.

Plain frozen dataclasses shared by every backend.  Units are in the names:
``*_s`` seconds (``time_s`` is unix time), ``*_mb`` mebibytes, ``*_c`` degrees
Celsius; ``cpu_util``, ``cpu_per_core`` and ``disk_used_ratio`` are fractions
in [0, 1], never percentages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompactResult", "Event", "NodeStatus", "PowerReading", "PurgeResult", "Sample",
           "StateChange"]


def _check_node(node: object) -> None:
    if not isinstance(node, str) or not node:
        raise ValueError(f"node must be a non-empty string, got {node!r}")


def _check_time(time_s: float) -> None:
    # ``not (x >= 0)`` also refuses NaN; bucket indices are truncated like floor only for t >= 0
    if not (time_s >= 0.0) or math.isinf(time_s):
        raise ValueError(f"time_s must be finite unix seconds >= 0, got {time_s!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One measurement of one node, as polled from its agent.

    A row of a downsampled history (or a compacted old row) is a ``Sample`` too:
    its numeric fields are the means over ``count`` raw samples of the bucket
    that starts at ``time_s`` and lasts ``resolution_s`` seconds.  Raw samples
    have ``count == 1`` and ``resolution_s == 0``.

    :param node: the node's name (``hostname.domain`` on the testbed).
    :param time_s: when it was measured, unix seconds.
    :param cpu_util: CPU utilisation over all cores, a fraction in [0, 1].
    :param mem_used_mb: memory in use, MiB.
    :param mem_total_mb: memory installed, MiB.
    :param load1: the one-minute load average.
    :param disk_used_ratio: fraction of the root file system in use, [0, 1].
    :param temperature_c: SoC temperature in °C, or None where not measured.
    :param cpu_per_core: utilisation of each core, fractions in [0, 1], or None.
    :param online: whether the agent answered (an offline poll may still be kept).
    :param cpu_busy_s: the node's busy CPU seconds over all its cores, a counter the agent
        keeps (``/proc/stat`` since boot; an emulated node's tasks since its agent started):
        the CPU used between two samples is the difference.  None where the agent gives
        none, and on downsampled rows (a mean of a counter means nothing).
    :param count: how many raw samples this row stands for (1 for a raw sample).
    :param resolution_s: the bucket length this row was averaged over (0 for raw).
    """

    node: str
    time_s: float
    cpu_util: float
    mem_used_mb: float
    mem_total_mb: float
    load1: float
    disk_used_ratio: float
    temperature_c: float | None = None
    cpu_per_core: tuple[float, ...] | None = None
    online: bool = True
    count: int = 1
    resolution_s: float = 0.0
    cpu_busy_s: float | None = None

    def __post_init__(self) -> None:
        # One fast test for the common case (histories of 100k rows are built
        # from these); the slow path finds which field is wrong.
        cores = self.cpu_per_core
        if cores is not None and type(cores) is not tuple:  # a list is accepted, kept as a tuple
            cores = tuple(cores)
            object.__setattr__(self, "cpu_per_core", cores)
        temp = self.temperature_c
        busy = self.cpu_busy_s
        if not (isinstance(self.node, str) and self.node
                and 0.0 <= self.time_s < math.inf
                and 0.0 <= self.cpu_util <= 1.0 and 0.0 <= self.disk_used_ratio <= 1.0
                and 0.0 <= self.mem_used_mb < math.inf and 0.0 <= self.mem_total_mb < math.inf
                and 0.0 <= self.load1 < math.inf
                and (temp is None or -math.inf < temp < math.inf)
                and (cores is None or all(0.0 <= c <= 1.0 for c in cores))
                and type(self.count) is int and self.count >= 1
                and 0.0 <= self.resolution_s < math.inf
                and (busy is None or 0.0 <= busy < math.inf)):
            self._explain()

    def _explain(self) -> None:
        _check_node(self.node)
        _check_time(self.time_s)
        for name in ("cpu_util", "disk_used_ratio"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}"
                                 " (a percentage must be divided by 100)")
        for name in ("mem_used_mb", "mem_total_mb", "load1", "resolution_s"):
            value = getattr(self, name)
            if not (0.0 <= value < math.inf):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.temperature_c is not None and not math.isfinite(self.temperature_c):
            raise ValueError(f"temperature_c must be finite or None, got {self.temperature_c!r}")
        if self.cpu_busy_s is not None and not (0.0 <= self.cpu_busy_s < math.inf):
            raise ValueError(f"cpu_busy_s must be finite and >= 0 or None, got {self.cpu_busy_s!r}")
        if self.cpu_per_core is not None and not all(0.0 <= c <= 1.0 for c in self.cpu_per_core):
            raise ValueError("cpu_per_core must hold fractions in [0, 1],"
                             f" got {self.cpu_per_core!r}")
        raise ValueError(f"count must be an integer >= 1, got {self.count!r}")


@dataclass(frozen=True, slots=True)
class PowerReading:
    """A node's power, ``watts`` at ``time_s`` (unix seconds, the master's clock), and where it
    was read: ``source`` is the meter's (``hwmon``, ``pmic`` read by the node's agent;
    ``snmp``, ``http``, ``prometheus``... read by the master)."""

    node: str
    time_s: float
    watts: float
    source: str

    def __post_init__(self) -> None:
        _check_node(self.node)
        _check_time(self.time_s)
        if isinstance(self.watts, bool) or not isinstance(self.watts, (int, float)) \
                or not math.isfinite(self.watts):
            raise ValueError(f"watts must be a finite number, got {self.watts!r}")
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source must be a non-empty string, got {self.source!r}")


@dataclass(frozen=True, slots=True)
class StateChange:
    """A node went online or offline at ``time_s`` (unix seconds), and why."""

    node: str
    time_s: float
    online: bool
    reason: str = ""

    def __post_init__(self) -> None:
        _check_node(self.node)
        _check_time(self.time_s)


@dataclass(frozen=True, slots=True)
class Event:
    """Anything else that happened to a node: a boot report, a netboot, a reflash.

    ``kind`` names what it is (``"boot"``, ...); ``data`` is any JSON object.
    """

    node: str
    time_s: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_node(self.node)
        _check_time(self.time_s)
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"kind must be a non-empty string, got {self.kind!r}")
        if not isinstance(self.data, dict):
            raise ValueError(f"data must be a JSON object (a dict), got {type(self.data).__name__}")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What the store knows of a node now: its newest sample and newest state change."""

    node: str
    sample: Sample | None
    state: StateChange | None

    @property
    def online(self) -> bool | None:
        """Whether the node is up, by the newer of ``sample`` and ``state``.

        A state change wins a tie; None when the store has neither.
        """
        if self.state is not None and (self.sample is None
                                       or self.state.time_s >= self.sample.time_s):
            return self.state.online
        return self.sample.online if self.sample is not None else None

    @property
    def time_s(self) -> float | None:
        """The time of the newer of ``sample`` and ``state``, or None."""
        times = [r.time_s for r in (self.sample, self.state) if r is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What :meth:`~rpiaas.store.HistoryStore.compact` did: rows replaced, rows written."""

    replaced: int
    written: int


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many rows :meth:`~rpiaas.store.HistoryStore.purge` deleted, by kind."""

    samples: int
    states: int
    events: int
    power: int = 0
