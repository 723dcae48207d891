"""The node registry: every node of the cluster, where its agent listens, and whether it is up."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model import Node
from ..store import NodeStatus, PowerReading, Sample
from .config import MasterConfig

__all__ = ["CLOCK_WINDOW", "NodeEntry", "Registry"]

CLOCK_WINDOW = 8  # the clock readings an offset estimate is chosen from


@dataclass
class NodeEntry:
    """A node as the master sees it.

    ``online`` is None until the first poll; ``changed_s`` is when it last
    changed (unix seconds), ``last_ok_s`` the last successful poll, ``reason``
    why it last went offline; ``emulated`` whether its agent's last report
    was an emulated node's (a local testbed), None until one answered.
    """

    node: Node
    host: str
    port: int
    online: bool | None = None
    changed_s: float | None = None
    last_ok_s: float | None = None
    reason: str = ""
    booting_since_s: float | None = None  # powered on and not reported booted yet
    # as a live run switched it: off | booting | on | unknown | failed (None: never switched)
    power_state: str | None = None
    failed_polls: int = 0  # in a row
    sample: Sample | None = None  # the newest reading polled from the agent
    emulated: bool | None = None  # its agent's last report: an emulated node's readings
    # what a task is on its agent (its last report's tasks.runner): process, or timer (an
    # emulated node of rpiaas-agent-emulated); None until one answered
    task_runner: str | None = None
    boot_s: float | None = None  # its last reported boot time
    power: PowerReading | None = None  # its newest power reading (agent-side or master-side meter)
    power_node_time_s: float | None = None  # its agent's newest reading's time, on the node's clock
    # its wall clock minus ours (see observe_clock), and how far that may be off
    clock_offset_s: float | None = None
    clock_error_s: float | None = None
    _clock_window: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=CLOCK_WINDOW), repr=False)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def observe_clock(self, node_time_s: float, sent_s: float, received_s: float) -> None:
        """Take a reading of the node's wall clock, ``node_time_s``, made between our
        ``sent_s`` and ``received_s``: its offset is ``node_time_s`` minus their midpoint,
        give or take half the round trip.  The estimate is the reading of the shortest
        round trip among the last :data:`CLOCK_WINDOW` (as NTP's clock filter does), so
        one slow answer does not move it, and a node whose clock was stepped is followed.
        """
        half_rtt = max(0.0, received_s - sent_s) / 2
        self._clock_window.append((half_rtt, node_time_s - (sent_s + half_rtt)))
        self.clock_error_s, self.clock_offset_s = min(self._clock_window)

    def node_to_local(self, node_time_s: float) -> float:
        """A time the node read on its own clock, on ours.

        Unchanged before any estimate, and while the offset is within its own
        error (a node on our clock, polled on a busy machine, reads a little off
        either way: that is no offset).
        """
        offset, error = self.clock_offset_s, self.clock_error_s
        if offset is None or error is None or abs(offset) <= error:
            return node_time_s
        return node_time_s - offset

    def set_online(self, online: bool, time_s: float, reason: str = "", misses: int = 1) -> bool:
        """Record a poll's outcome; True if the state changed (first poll included).

        An online node turns offline only at its ``misses``-th failed poll in a
        row, so one late answer from a busy node is not a node lost.
        """
        if online:
            self.last_ok_s = time_s
            self.failed_polls = 0
        else:
            self.failed_polls += 1
            if self.online is True and self.failed_polls < misses:
                return False
        if self.online is online:
            return False
        self.online, self.changed_s, self.reason = online, time_s, "" if online else reason
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.node.type.name,
            "address": self.node.address,
            "agent": self.base_url,
            "online": self.online,
            "changed_s": self.changed_s,
            "last_ok_s": self.last_ok_s,
            "reason": self.reason,
            "booting_since_s": self.booting_since_s,
            "power_state": self.power_state,
            "capacity": {"cores": self.node.type.cores, "mem_mb": self.node.type.mem_mb},
            "emulated": self.emulated,
            "task_runner": self.task_runner,
            "clock_offset_s": None if self.clock_offset_s is None else round(self.clock_offset_s, 4),
            "clock_error_s": None if self.clock_error_s is None else round(self.clock_error_s, 4),
            "power": None if self.power is None else {
                "power_w": self.power.watts, "time_s": self.power.time_s, "source": self.power.source},
        }


class Registry:
    """The nodes in cluster order, by name."""

    def __init__(self, config: MasterConfig) -> None:
        self.entries: dict[str, NodeEntry] = {}
        for node in config.cluster.nodes:
            if node.name in config.agents:
                host, port = config.agents[node.name]
            else:
                host, port = node.address or node.name, config.agent_port
            self.entries[node.name] = NodeEntry(node, host, port)

    def __iter__(self) -> Iterator[NodeEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> NodeEntry | None:
        return self.entries.get(name)

    def restore(self, latest: dict[str, NodeStatus]) -> int:
        """Take up each node's last known state from the store (after a master restart).

        A node's state is its last recorded change; its last good poll, its
        newest sample.  The first poll then records a change only if there
        was one.  Returns how many nodes had a state to restore.
        """
        restored = 0
        for name, status in latest.items():
            entry = self.entries.get(name)
            if entry is None:  # a node since removed from the cluster config
                continue
            if status.state is not None:
                entry.online = status.state.online
                entry.changed_s = status.state.time_s
                entry.reason = "" if status.state.online else status.state.reason
                restored += 1
            if status.sample is not None:
                entry.last_ok_s = status.sample.time_s
                entry.sample = status.sample  # what the API shows until the first poll
        return restored
