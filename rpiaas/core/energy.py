"""The energy integrator: per node, reserved cores, busy core-seconds, power and energy.

Both shells feed it every node whose reservations or power state the control
plane changed (:meth:`ControlPlane.changed_nodes
<rpiaas.core.control.ControlPlane.changed_nodes>`), so the figures of a
simulated and a live run mean the same thing.  In simulation a node's power
follows its reserved cores (``u = used / cores``); on the testbed it follows
the utilisation measured on the node (:meth:`NodeUsage.measure`), so energy is
the power model applied to what the node really did.  Busy core-seconds are
the reserved cores in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..model import Node, PowerState

if TYPE_CHECKING:
    from .control import ControlPlane

__all__ = ["STATE_NAMES", "NodeSample", "NodeUsage"]

# every node at one time: (time, states, cores used, memory used, utilisation, power, energy, tasks)
NodeSample = tuple[float, list[str], list[int], list[float], list[float], list[float], list[float], list[int]]

STATE_NAMES = {int(s): s.name.lower() for s in PowerState}
_ON = int(PowerState.ON)
_BOOTING = int(PowerState.BOOTING)


class NodeUsage:
    """Per-node reserved cores, busy core-seconds, power and energy, integrated at each change.

    A node's power is its type's model (:meth:`NodeType.power_w
    <rpiaas.model.NodeType.power_w>`) at its state and utilisation.  It is
    piecewise constant between changes, so integrating at every change
    (:meth:`_advance`, the one energy step) is exact, not sampled.

    :param nodes: the cluster's nodes, in index order.
    :param states: every node's power state at time 0.
    :param measured: the utilisation is the one measured on the node (:meth:`measure`)
        rather than the reserved share of its cores.
    :param utilization_out: a float64 array to write each node's utilisation into: the
        view's, in simulation.
    :param out_follows: write ``utilization_out`` at every change (a policy reads it during
        a step); else :meth:`sync_util` writes it before anything reads it.
    """

    def __init__(self, nodes: Sequence[Node], states: Sequence[int], measured: bool = False,
                 utilization_out: Any = None, out_follows: bool = True) -> None:
        n = len(nodes)
        self.names = [x.name for x in nodes]
        self.types = [x.type for x in nodes]
        self.cores = [x.type.cores for x in nodes]
        self.measured = measured
        self.last = [0.0] * n
        self.energy_j = [0.0] * n
        self.busy_core_s = [0.0] * n
        self.used = [0] * n
        self.util = [0.0] * n
        self.state = [int(s) for s in states]
        self.power_w = [t.power_w(s, 0.0) for t, s in zip(self.types, self.state, strict=True)]
        self._util_out = utilization_out
        # written a node at a time through a memoryview: a third of numpy's ``a[i] = x``
        self._each_change: Any = (memoryview(utilization_out)
                                  if out_follows and utilization_out is not None else None)

    def _advance(self, i: int, now: float) -> None:
        """The energy step: node ``i``'s energy and busy core-seconds up to ``now``."""
        dt = now - self.last[i]
        self.energy_j[i] += self.power_w[i] * dt
        self.busy_core_s[i] += self.used[i] * dt
        self.last[i] = now

    def follow(self, control: ControlPlane, now: float) -> list[int]:
        """Take in every node the control plane changed since the last call (its reserved
        cores and power state); returns them, in the order of the changes."""
        changed = control.changed_nodes()
        if changed:
            states, free, cores = control.node_states, control.node_cores_free, self.cores
            util, types, out, measured = self.util, self.types, self._each_change, self.measured
            for i in changed:
                self._advance(i, now)
                used = cores[i] - free[i]
                self.used[i] = used
                state = self.state[i] = states[i]
                if not measured:
                    util[i] = used / cores[i]
                    if out is not None:
                        out[i] = util[i]
                self.power_w[i] = types[i].power_w(state, util[i])
        return changed

    def measure(self, i: int, now: float, util: float) -> None:
        """Node ``i`` was measured at utilisation ``util`` (live): its power follows from now on."""
        self._advance(i, now)
        self.util[i] = util
        self.power_w[i] = self.types[i].power_w(self.state[i], util)

    def sync_util(self) -> None:
        """Write every node's utilisation into ``utilization_out`` (for ``out_follows`` false,
        before anything reads it)."""
        out = self._util_out
        if out is not None:
            out[:] = self.util

    def unbusy(self, i: int, core_s: float) -> None:
        """Take ``core_s`` off node ``i``'s busy core-seconds: cores reserved before a task
        really started on it (the live dispatch latency), so busy time is the tasks' own."""
        self.busy_core_s[i] -= core_s

    def close(self, now: float) -> None:
        """Integrate every node up to ``now``."""
        for i in range(len(self.last)):
            self._advance(i, now)

    def sample(self, now: float, mem_used_mb: Sequence[float], ntasks: Sequence[int]) -> NodeSample:
        """Every node at ``now``: state, reserved cores, memory, utilisation, power, energy and
        running tasks (memory as the shell knows it: reserved in simulation, measured live);
        :func:`~rpiaas.rundir.stream.node_rows` makes the ``nodes.csv`` rows of it."""
        energy, power, last = self.energy_j, self.power_w, self.last
        return (now, [STATE_NAMES[s] for s in self.state], list(self.used), list(mem_used_mb),
                list(self.util), list(power),
                [e + p * (now - t) for e, p, t in zip(energy, power, last, strict=True)], list(ntasks))

    def totals(self) -> tuple[float, float]:
        """Busy core-seconds and energy (J) of the whole cluster."""
        return sum(self.busy_core_s), sum(self.energy_j)

    def per_node(self, nodes: Sequence[Node]) -> list[dict[str, object]]:
        """Energy and busy core-seconds per node: the ``nodes`` list of ``run.json``."""
        return [{"node": n.name, "type": n.type.name, "energy_j": float(f"{e:.12g}"),
                 "busy_core_s": float(f"{b:.12g}")}
                for n, e, b in zip(nodes, self.energy_j, self.busy_core_s, strict=True)]
