"""The energy integrator: per node, reserved cores, busy core-seconds, power and energy.

Both shells feed it every node whose reservations or power state the control
plane changed (:attr:`ControlPlane.changes
<rpiaas.core.control.ControlPlane.changes>`), so the figures of a
simulated and a live run mean the same thing.  In simulation a node's power
follows its reserved cores (``u = used / cores``); on the testbed it follows
the CPU seconds measured on the node (:meth:`NodeUsage.measure_cpu`), so energy
is the power model applied to what the node really did.  Busy core-seconds are
the reserved cores in both.

On the testbed the energy is integrated in two parts.  The power at no CPU
use (``power_w(state, 0)``: idle, booting, off) follows every change of
state, as in simulation.  The CPU's part is added as the node's CPU seconds
are measured: the model is linear in utilisation (``NodeType.power_w``), so
over any span it is ``(power_w(on, 1) - power_w(on, 0)) / cores`` joules per
CPU second, however the seconds were spread over the span.  So the energy
does not depend on how often the CPU was read, only on the CPU seconds the
node's counters gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..model import Node, NodeType, PowerState

_ON = int(PowerState.ON)

if TYPE_CHECKING:
    from .control import ControlPlane

__all__ = ["STATE_NAMES", "NodeSample", "NodeUsage"]

# every node at one time: (time, states, cores used, memory used, utilisation, power, energy, tasks)
NodeSample = tuple[float, list[str], list[int], list[float], list[float], list[float], list[float], list[int]]

STATE_NAMES = {int(s): s.name.lower() for s in PowerState}


class NodeUsage:
    """Per-node reserved cores, busy core-seconds, power and energy, integrated at each change.

    A node's power is its type's model (:meth:`NodeType.power_w
    <rpiaas.model.NodeType.power_w>`) at its state and utilisation.  It is
    piecewise constant between changes, so integrating at every change
    (:meth:`follow`, the one energy step) is exact, not sampled.

    :param control: the run's control plane: its nodes, their state at time 0, and the
        changes :meth:`follow` takes in.
    :param measured: the utilisation and the CPU's energy are the ones measured on the node
        (:meth:`measure_cpu`) rather than the reserved share of its cores.
    :param utilization_out: a float64 array to write each node's utilisation into at every
        change: the view's, in simulation.
    """

    def __init__(self, control: ControlPlane, measured: bool = False,
                 utilization_out: Any = None) -> None:
        nodes = control.nodes
        n = len(nodes)
        self.names = [x.name for x in nodes]
        self.types = [x.type for x in nodes]
        self.cores = [x.type.cores for x in nodes]
        self.measured = measured
        # the control plane's changes since the last follow()
        self._changes = control.changes
        self.last = [0.0] * n
        self.energy_j = [0.0] * n
        self.busy_core_s = [0.0] * n
        self.used = [0] * n
        self.util = [0.0] * n
        self.state = [int(s) for s in control.node_states]
        self.power_w = [t.power_w(s, 0.0) for t, s in zip(self.types, self.state, strict=True)]
        self.cpu_s = [0.0] * n  # CPU seconds measured on each node (live)
        # written a node at a time through a memoryview: a third of numpy's ``a[i] = x``
        self._util_out: Any = None if utilization_out is None else memoryview(utilization_out)
        # In simulation a node's utilisation is its reserved cores over its cores: a whole
        # number of cores gives one of cores + 1 values, and the power at each (in every power
        # state) is asked of the type's model once, not at every change.
        levels: dict[NodeType, list[tuple[float, tuple[float, ...]]]] = {}
        for t in self.types:
            if t not in levels:
                shares = [k / t.cores for k in range(t.cores + 1)]
                levels[t] = [(u, tuple(t.power_w(s, u) for s in range(len(PowerState))))
                             for u in shares]
        self._levels = [levels[t] for t in self.types]
        # what follow() works on, in one tuple: one load where there would be thirteen
        self._lists = (self.cores, self.types, self._levels, self.last, self.energy_j,
                       self.busy_core_s, self.used, self.state, self.util, self.power_w,
                       self._util_out, measured)

    def follow(self, changes: Sequence[tuple[int, float, int, int]] | None = None) -> None:
        """Integrate every change the control plane made since the last call (each at its
        own time), or ``changes`` (``(node, time, free cores, power state)`` each).  This
        loop is the one energy step: a node's energy and busy core-seconds grow by its power
        and reserved cores times the time since its last change, then its reserved cores,
        state and power (its type's model) follow the change."""
        log = self._changes if changes is None else changes
        if not log:
            return
        (cores, types, levels, last, energy, busy, used_l, state_l, util, power, out,
         measured) = self._lists
        for i, t, free, state in log:
            dt = t - last[i]
            energy[i] += power[i] * dt
            busy[i] += used_l[i] * dt
            last[i] = t
            used = used_l[i] = cores[i] - free
            state_l[i] = state
            if measured:  # the power at no CPU use: the CPU's part comes with measure_cpu
                power[i] = types[i].power_w(state, 0.0)
            else:  # the model at used / cores (see __init__)
                u, by_state = levels[i][used]
                util[i] = u
                power[i] = by_state[state]
                if out is not None:
                    out[i] = u
        if changes is None:
            self._changes.clear()

    def _now(self, nodes: Sequence[int], now: float) -> list[tuple[int, float, int, int]]:
        """``nodes`` as changes at ``now`` that change nothing but the time."""
        return [(i, now, self.cores[i] - self.used[i], self.state[i]) for i in nodes]

    def measure_cpu(self, i: int, now: float, cpu_s: float, span_s: float) -> None:
        """Node ``i`` used ``cpu_s`` CPU seconds (over all its cores) in the ``span_s`` seconds
        up to ``now`` (live, from the node's counters): they count towards its energy at its
        type's joules per CPU second (see the module), and its utilisation is their share of
        the span's core-seconds from now on."""
        self.follow()
        self.follow(self._now((i,), now))
        t, cores = self.types[i], self.cores[i]
        cpu_s = max(0.0, cpu_s)
        self.cpu_s[i] += cpu_s
        self.energy_j[i] += (t.power_w(_ON, 1.0) - t.power_w(_ON, 0.0)) / cores * cpu_s
        if span_s > 0:
            self.util[i] = min(1.0, cpu_s / (cores * span_s))

    def unbusy(self, i: int, core_s: float) -> None:
        """Take ``core_s`` off node ``i``'s busy core-seconds: cores reserved before a task
        really started on it (the live dispatch latency), so busy time is the tasks' own."""
        self.busy_core_s[i] -= core_s

    def close(self, now: float) -> None:
        """Integrate every change, then every node up to ``now``."""
        self.follow()
        self.follow(self._now(range(len(self.last)), now))

    def sample(self, now: float, mem_used_mb: Sequence[float], ntasks: Sequence[int]) -> NodeSample:
        """Every node at ``now``: state, reserved cores, memory, utilisation, power, energy and
        running tasks (memory as the shell knows it: reserved in simulation, measured live);
        :func:`~rpiaas.rundir.stream.node_rows` makes the ``nodes.csv`` rows of it."""
        energy, power, last = self.energy_j, self.power_w, self.last
        shown = [t.power_w(s, u) for t, s, u in zip(self.types, self.state, self.util, strict=True)] \
            if self.measured else list(power)
        return (now, [STATE_NAMES[s] for s in self.state], list(self.used), list(mem_used_mb),
                list(self.util), shown,
                [e + p * (now - t) for e, p, t in zip(energy, power, last, strict=True)], list(ntasks))

    def totals(self) -> tuple[float, float]:
        """Busy core-seconds and energy (J) of the whole cluster."""
        return sum(self.busy_core_s), sum(self.energy_j)

    def per_node(self, nodes: Sequence[Node]) -> list[dict[str, object]]:
        """Energy and busy core-seconds per node: the ``nodes`` list of ``run.json``."""
        return [{"node": n.name, "type": n.type.name, "energy_j": float(f"{e:.12g}"),
                 "busy_core_s": float(f"{b:.12g}")}
                for n, e, b in zip(nodes, self.energy_j, self.busy_core_s, strict=True)]
