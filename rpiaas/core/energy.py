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

from collections.abc import Callable, Sequence
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

    A node's power is ``power_idle_w + (power_max_w - power_idle_w) * u`` while
    on, ``power_boot_w`` while booting and ``power_off_w`` while off or down.
    It is piecewise constant between changes, so integrating at every change
    is exact, not sampled.

    :param nodes: the cluster's nodes, in index order.
    :param states: every node's power state at time 0.
    :param measured: ``u`` is the measured utilisation (:meth:`measure`) rather
        than the reserved share of the cores.
    """

    def __init__(self, nodes: Sequence[Node], states: Sequence[int], measured: bool = False) -> None:
        n = len(nodes)
        self.names = [x.name for x in nodes]
        self.idle = [x.type.power_idle_w for x in nodes]
        self.span = [x.type.power_max_w - x.type.power_idle_w for x in nodes]
        self.off = [x.type.power_off_w for x in nodes]
        self.boot = [x.type.power_boot_w for x in nodes]
        self.cores = [x.type.cores for x in nodes]
        self.measured = measured
        self.last = [0.0] * n
        self.energy_j = [0.0] * n
        self.busy_core_s = [0.0] * n
        self.used = [0] * n
        self.util = [0.0] * n
        self.state = [int(s) for s in states]
        self.power_w = [self._power(i) for i in range(n)]
        # the lists take() works on, in one tuple: one load instead of twelve per step
        self._lists = (self.last, self.energy_j, self.busy_core_s, self.used, self.state, self.util,
                       self.power_w, self.cores, self.idle, self.span, self.boot, self.off)

    def _power(self, i: int) -> float:
        state = self.state[i]
        if state == _ON:
            return self.idle[i] + self.span[i] * self.util[i]
        if state == _BOOTING:
            return self.boot[i]
        return self.off[i]

    def update(self, i: int, now: float, state: int, used: int) -> None:
        """Node ``i`` now has power state ``state`` and ``used`` reserved cores."""
        dt = now - self.last[i]
        self.energy_j[i] += self.power_w[i] * dt
        self.busy_core_s[i] += self.used[i] * dt
        self.last[i] = now
        self.used[i] = used
        self.state[i] = state
        if not self.measured:
            self.util[i] = used / self.cores[i]
        self.power_w[i] = self._power(i)

    def follow(self, control: ControlPlane, now: float) -> list[int]:
        """Take in every node the control plane changed since the last call; returns them."""
        changed = control.changed_nodes()
        if changed:
            state, free, cores, update = control.node_states, control.node_cores_free, self.cores, self.update
            for n in changed:
                update(n, now, state[n], cores[n] - free[n])
        return changed

    def take(self, changed: Sequence[int], states: Sequence[int], cores_free: Sequence[int],
             now: float, util_out: Any = None) -> None:
        """:meth:`update` every node of ``changed`` (a node may repeat) from the control
        plane's ``states`` and ``cores_free``; write each one's utilisation into
        ``util_out`` too when given.  The loop of :meth:`follow`, written out: it runs
        after every step."""
        last, energy, busy, used_l, state_l, util, power, cores, idle, span, boot, off = self._lists
        measured = self.measured
        for i in changed:
            dt = now - last[i]
            energy[i] += power[i] * dt
            busy[i] += used_l[i] * dt
            last[i] = now
            used = cores[i] - cores_free[i]
            used_l[i] = used
            state = states[i]
            state_l[i] = state
            if not measured:
                util[i] = used / cores[i]
            if state == _ON:
                power[i] = idle[i] + span[i] * util[i]
            elif state == _BOOTING:
                power[i] = boot[i]
            else:
                power[i] = off[i]
            if util_out is not None:
                util_out[i] = util[i]

    def taker(self, cores_free: Sequence[int], util_out: Any = None) -> Callable[[int, float], None]:
        """:meth:`take` of one node that is on and was on at its last change (a task started or
        ended on it; power state changes go through :meth:`take`), as a function of the node
        and the time, for the simulation's fast path (twice a task).  With ``util_out`` the
        utilisation is written there too; without, it is left for :meth:`sync_util` (the same
        quotient), as no policy reads it in between."""
        assert not self.measured
        last, energy, busy, used_l, _, util, power, cores, idle, span, _, _ = self._lists
        mirrors = util_out is not None

        def take_on(i: int, now: float) -> None:
            dt = now - last[i]
            energy[i] += power[i] * dt
            busy[i] += used_l[i] * dt
            last[i] = now
            used = cores[i] - cores_free[i]
            used_l[i] = used
            u = used / cores[i]
            power[i] = idle[i] + span[i] * u
            if mirrors:
                util[i] = util_out[i] = u

        return take_on

    def sync_util(self, util_out: Any = None) -> None:
        """Set every node's utilisation (and ``util_out``'s) from its reserved cores, as
        :meth:`take` sets it: for a writer of the other lists alone (the simulation's fast
        path, while no policy reads the view)."""
        assert not self.measured
        self.util[:] = [u / c for u, c in zip(self.used, self.cores, strict=True)]
        if util_out is not None:
            util_out[:] = self.util

    def measure(self, i: int, now: float, util: float) -> None:
        """Node ``i`` was measured at utilisation ``util`` (live): its power follows from now on."""
        dt = now - self.last[i]
        self.energy_j[i] += self.power_w[i] * dt
        self.busy_core_s[i] += self.used[i] * dt
        self.last[i] = now
        self.util[i] = util
        self.power_w[i] = self._power(i)

    def unbusy(self, i: int, core_s: float) -> None:
        """Take ``core_s`` off node ``i``'s busy core-seconds: cores reserved before a task
        really started on it (the live dispatch latency), so busy time is the tasks' own."""
        self.busy_core_s[i] -= core_s

    def energy_at(self, i: int, now: float) -> float:
        return self.energy_j[i] + self.power_w[i] * (now - self.last[i])

    def close(self, now: float) -> None:
        """Integrate every node up to ``now``."""
        for i in range(len(self.last)):
            dt = now - self.last[i]
            self.energy_j[i] += self.power_w[i] * dt
            self.busy_core_s[i] += self.used[i] * dt
            self.last[i] = now

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
