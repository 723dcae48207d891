"""Exact energy accounting: power is piecewise constant between events.

Each node's power is ``power_idle_w + (power_max_w - power_idle_w) * u`` while
on (``u`` = reserved cores / cores), ``power_off_w`` while off or down and
``power_boot_w`` while booting.  It only changes when an event touches the
node, so integrating at every change is exact, not sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Node, PowerState

__all__ = ["PowerMeter"]


class PowerMeter:
    """Per-node power, energy and busy core-seconds, integrated at each change."""

    def __init__(self, nodes: Sequence[Node], states: Sequence[int]) -> None:
        self.idle = [n.type.power_idle_w for n in nodes]
        self.span = [n.type.power_max_w - n.type.power_idle_w for n in nodes]
        self.off = [n.type.power_off_w for n in nodes]
        self.boot = [n.type.power_boot_w for n in nodes]
        self.cores = [n.type.cores for n in nodes]
        self.last = [0.0] * len(nodes)
        self.energy_j = [0.0] * len(nodes)
        self.busy_core_s = [0.0] * len(nodes)
        self.used = [0] * len(nodes)
        self.power_w = [self._power(i, int(s), 0) for i, s in enumerate(states)]

    def _power(self, i: int, state: int, used: int) -> float:
        if state == PowerState.ON:
            return self.idle[i] + self.span[i] * (used / self.cores[i])
        if state == PowerState.BOOTING:
            return self.boot[i]
        return self.off[i]

    def update(self, i: int, now: float, state: int, used: int) -> None:
        """Close the interval since the last change of node ``i`` and set its new level."""
        dt = now - self.last[i]
        self.energy_j[i] += self.power_w[i] * dt
        self.busy_core_s[i] += self.used[i] * dt
        self.last[i] = now
        self.used[i] = used
        self.power_w[i] = self._power(i, state, used)

    def energy_at(self, i: int, now: float) -> float:
        return self.energy_j[i] + self.power_w[i] * (now - self.last[i])

    def close(self, now: float) -> None:
        """Integrate every node up to ``now``."""
        for i in range(len(self.last)):
            dt = now - self.last[i]
            self.energy_j[i] += self.power_w[i] * dt
            self.busy_core_s[i] += self.used[i] * dt
            self.last[i] = now
