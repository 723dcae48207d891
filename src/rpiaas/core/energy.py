"""The energy integrator: per node, reserved cores, busy core-seconds, power and energy.

Both shells feed it every node whose reservations or power state the control
plane changed (:attr:`ControlPlane.changes
<rpiaas.core.control.ControlPlane.changes>`), so the figures of a
simulated and a live run mean the same thing.  In simulation a node's power
follows its reserved cores (``u = used / cores``); on the testbed it follows
the CPU seconds measured on the node (:meth:`NodeUsage.measure_cpu`), so energy
is the power model applied to what the node really did.  Busy core-seconds are
the reserved cores in both.

It is also the one place that counts what power did, for both worlds alike:
switch-offs carried out (``power_cycles``), boots after a ``PowerOn``
(``booting`` to ``on``) and how long each took, and the node-seconds spent off
(:meth:`NodeUsage.power_figures`, the summary's fields).  Where a node's power
comes from is said per node (:attr:`NodeUsage.power_source`): ``modelled`` in
simulation, ``modelled-from-measured`` on the testbed unless a meter gives it
(``measured``, :meth:`NodeUsage.set_power_source`).

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

__all__ = ["MEASURED", "MODELLED", "MODELLED_FROM_MEASURED", "SOURCES", "STATE_NAMES", "NodeSample",
           "NodeUsage"]

# every node at one time: (time, states, cores used, memory used, allocated share of the cores,
# CPU utilisation, power, energy, tasks, where each node's power comes from)
NodeSample = tuple[float, list[str], list[int], list[float], list[float], list[float], list[float],
                   list[float], list[int], list[str]]

STATE_NAMES = {int(s): s.name.lower() for s in PowerState}

# where a power, energy or utilisation figure comes from (run.json's ``sources``, nodes.csv's
# ``power_source``): read from a meter or the node, the power model on measured utilisation,
# or the model alone (simulation)
MEASURED = "measured"
MODELLED_FROM_MEASURED = "modelled-from-measured"
MODELLED = "modelled"
SOURCES = (MEASURED, MODELLED_FROM_MEASURED, MODELLED)

_OFF = int(PowerState.OFF)
_BOOTING = int(PowerState.BOOTING)
_ON = int(PowerState.ON)


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

    :attr:`util` is the utilisation power follows: the reserved share of the cores in
    simulation, the measured CPU share live.  :attr:`cpu_s` adds up the CPU seconds measured
    (live only; in simulation the CPU's seconds are :attr:`busy_core_s`).
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
        self.power_source = [MODELLED_FROM_MEASURED if measured else MODELLED] * n
        # what power did, counted at each change of a node's power state
        self.power_cycles = 0  # switch-offs carried out
        self.boots_s: list[tuple[int, float]] = []  # (node, PowerOn to booted) of each boot
        self.off_s = 0.0  # node-seconds spent off, up to each node's last change
        self._since = [0.0] * n  # when each node entered its present power state
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
            if state_l[i] != state:  # (rare: one compare per change otherwise)
                self._power_change(i, t, state_l[i], state)
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

    def _power_change(self, i: int, t: float, old: int, new: int) -> None:
        """Node ``i`` went from power state ``old`` to ``new`` at ``t``: count it."""
        if old == _OFF:
            self.off_s += t - self._since[i]
        if new == _OFF:
            self.power_cycles += 1
        elif old == _BOOTING and new == _ON:
            self.boots_s.append((i, t - self._since[i]))
        self._since[i] = t

    def power_figures(self) -> dict[str, Any]:
        """The summary's power fields: ``power_cycles`` (switch-offs carried out), ``boots``
        (after a ``PowerOn``), ``boot_s_median`` (``None`` without a boot) and
        ``time_off_s`` (node-seconds off, up to each node's last change: call :meth:`close`
        first)."""
        off = self.off_s + sum(last - since for s, last, since in zip(self.state, self.last, self._since,
                                                                      strict=True) if s == _OFF)
        durations = [d for _, d in self.boots_s]
        median = None
        if durations:
            import statistics  # here: only a run with boots has a median (2 ms to import)

            median = _r(statistics.median(durations))
        return {"power_cycles": self.power_cycles, "boots": len(durations), "boot_s_median": median,
                "time_off_s": _r(off)}

    def cpu_totals(self) -> float:
        """CPU core-seconds of the whole cluster: measured live, the reserved ones in simulation."""
        return sum(self.cpu_s) if self.measured else sum(self.busy_core_s)

    def set_power_source(self, i: int, source: str) -> None:
        """Where node ``i``'s power comes from (one of :data:`SOURCES`): a meter's readings
        make it ``measured``."""
        if source not in SOURCES:
            raise ValueError(f"power source: expected one of {', '.join(SOURCES)}, got {source!r}")
        self.power_source[i] = source

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
        """Every node at ``now``: state, reserved cores, memory, allocated share of the cores,
        CPU utilisation (measured live; in simulation the allocated share), power, energy,
        running tasks and where its power comes from (memory as the shell knows it: reserved
        in simulation, measured live); :func:`~rpiaas.rundir.stream.node_rows` makes the
        ``nodes.csv`` rows of it."""
        energy, power, last = self.energy_j, self.power_w, self.last
        if self.measured:  # power at the measured CPU share: what the node drew, as modelled
            allocated = [u / c for u, c in zip(self.used, self.cores, strict=True)]
            cpu = list(self.util)
            shown = [t.power_w(s, u) for t, s, u in zip(self.types, self.state, self.util, strict=True)]
        else:  # the utilisation power follows is the allocated share: one list serves both
            allocated = cpu = list(self.util)
            shown = list(power)
        return (now, [STATE_NAMES[s] for s in self.state], list(self.used), list(mem_used_mb),
                allocated, cpu, shown,
                [e + p * (now - t) for e, p, t in zip(energy, power, last, strict=True)], list(ntasks),
                list(self.power_source))

    def totals(self) -> tuple[float, float]:
        """Busy core-seconds and energy (J) of the whole cluster."""
        return sum(self.busy_core_s), sum(self.energy_j)

    def per_node(self, nodes: Sequence[Node]) -> list[dict[str, object]]:
        """Energy (and where it comes from) and busy core-seconds per node: the ``nodes``
        list of ``run.json``."""
        return [{"node": n.name, "type": n.type.name, "energy_j": _r(e), "busy_core_s": _r(b),
                 "energy_source": src}
                for n, e, b, src in zip(nodes, self.energy_j, self.busy_core_s, self.power_source,
                                        strict=True)]


def _r(x: float) -> float:
    return float(f"{x:.12g}")
