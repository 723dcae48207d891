"""What a live run learns from the master's poller: its nodes going down and up, their load.

The master's poller keeps each node's registry entry up to date (online or
not, the latest sample).  :class:`NodeWatch` compares the entries with what
the run last saw: a node that went offline or came back becomes a
``NodeDown`` or ``NodeUp`` event, a new sample the node's measured
utilisation, handed to the control plane's view before the next step.  The
utilisation is the difference of the node's busy CPU counter between its last
two samples over their cores and time (so a task that ran between two polls
counts), or the agent's sampled utilisation where it gives no counter.

The run may learn that a node is gone before the poller does: a start that
could not reach its agent (:mod:`.agent_tasks`) makes the node down at once
(:meth:`NodeWatch.unreachable`).  The poller may still hold the node online for a
while; the node is up again (``NodeUp``) only when the poller has an answer of
the agent taken after that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.events import Event, NodeDown, NodeUp
from ..store import Sample
from .clock import RunClock
from .options import AgentNode

__all__ = ["NodeWatch", "utilization"]


def utilization(last: Sample | None, sample: Sample) -> float:
    """A node's CPU utilisation from ``last`` to ``sample``: the difference of their busy CPU
    counters over their cores and time, or ``sample``'s own where either has no counter (or
    the counter went down: the node started again)."""
    a, b = (last.cpu_busy_s if last is not None else None), sample.cpu_busy_s
    cores = len(sample.cpu_per_core or ())
    if last is None or a is None or b is None or b < a or not cores \
            or sample.time_s <= last.time_s:
        return float(sample.cpu_util)
    return min(1.0, (b - a) / (cores * (sample.time_s - last.time_s)))


class NodeWatch:
    """The run's view of its nodes' entries.

    :param entries: the agents of the scenario's nodes (the master's registry entries).
    :param clock: the run's clock (an event is stamped with the time it was seen).
    :param put: takes an event for the control plane at a scenario time.
    """

    def __init__(self, entries: Sequence[AgentNode], clock: RunClock,
                 put: Callable[[float, Event], None]) -> None:
        self.entries = entries
        self.clock = clock
        self.put = put
        # whether each node is up, as the run last saw it (a resumed run: as its journal says)
        self.online: list[bool] = [e.online is not False for e in entries]
        self._seen: list[Any] = [None] * len(entries)  # the sample last seen per node
        # measured utilisation seen since the last step: given to the view before the
        # next one (and journalled with it, so a resumed run decides as the first did)
        self._news: dict[int, float] = {}
        # nodes whose agents come and go by the run's own power calls: no events of them
        self.held: set[int] = set()
        # nodes the run found unreachable, with the unix time it did: down, whatever the
        # poller says, until it has an answer from after that time
        self.unreached: dict[int, float] = {}

    def hold(self, node: int) -> None:
        """``node``'s agent is switched off or booting by the run: its going and coming are
        no ``NodeDown``/``NodeUp`` (the run sends ``NodeBooted`` itself)."""
        self.held.add(node)

    def release(self, node: int, up: bool) -> None:
        """Watch ``node`` again, taking it as up or not from now on."""
        self.held.discard(node)
        self.unreached.pop(node, None)
        self.online[node] = up

    def unreachable(self, node: int, at_s: float, reason: str) -> None:
        """The run could not reach ``node``'s agent: ``NodeDown`` with ``reason`` at scenario
        time ``at_s`` (unless the node is down already), so no policy chooses it again until
        the poller hears from it after now."""
        if not self.online[node]:
            return
        self.online[node] = False
        if node not in self.held:
            self.unreached[node] = self.clock.unix()
        self.put(at_s, NodeDown(node, reason))

    def look(self) -> None:
        """Compare the entries with what was seen last: state changes, new samples."""
        for i, entry in enumerate(self.entries):
            up = entry.online is not False
            if i in self.held:
                self.online[i] = up
            elif i in self.unreached:
                sample = entry.sample
                if entry.online is False:
                    del self.unreached[i]  # the poller found it down too
                elif sample is not None and sample.time_s > self.unreached[i]:
                    del self.unreached[i]  # an answer from after the run found it gone
                    self.online[i] = True
                    self.put(self.clock.now(), NodeUp(i))
            elif up != self.online[i]:
                self.online[i] = up
                self.put(self.clock.now(),
                         NodeUp(i) if up else NodeDown(i, entry.reason or "agent offline"))
            sample = entry.sample
            if sample is not self._seen[i]:
                last, self._seen[i] = self._seen[i], sample
                if sample is not None:
                    self._news[i] = utilization(last, sample)

    def take_utilization(self) -> dict[int, float]:
        """The utilisation measured per node since the last call."""
        news, self._news = self._news, {}
        return news
