"""ClusterView: what a policy sees of the cluster.

One view lives for a whole run.  Its numpy arrays are updated in place by the
control plane (reservations, power states) and by the shell (utilisation:
modelled in simulation, measured on the testbed); a policy gets read-only
views of them, never copies, so looking is free and writing raises.

Index ``i`` of every array is node ``nodes[i]``.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .model import Node, PowerState, Task

__all__ = ["ClusterView", "FreeCoresIndex"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _readonly(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    v: npt.NDArray[np.generic] = a.view()
    v.flags.writeable = False
    return v


class FreeCoresIndex:
    """Nodes that are on, grouped by free cores and by free memory.

    For each number of free cores ``k`` it keeps the distinct free-memory
    levels present, sorted, and for each level the nodes at it in the order
    they got there.  Best and worst fit are then a binary search over memory
    levels, whatever the number of nodes; moving a node is O(1) unless it
    opens or closes a memory level.
    """

    __slots__ = ("_groups", "_levels", "_where", "max_cores")

    def __init__(self, max_cores: int) -> None:
        self.max_cores = max_cores
        self._levels: list[list[int]] = [[] for _ in range(max_cores + 1)]
        self._groups: list[dict[int, dict[int, None]]] = [{} for _ in range(max_cores + 1)]
        self._where: dict[int, tuple[int, int]] = {}  # node -> (free cores, free memory)

    def add(self, node: int, free: int, mem_free_mb: int) -> None:
        groups = self._groups[free]
        group = groups.get(mem_free_mb)
        if group is None:
            group = groups[mem_free_mb] = {}
            insort(self._levels[free], mem_free_mb)
        group[node] = None
        self._where[node] = (free, mem_free_mb)

    def remove(self, node: int, free: int) -> None:
        f, mem = self._where.pop(node)
        groups = self._groups[f]
        group = groups[mem]
        del group[node]
        if not group:
            del groups[mem]
            levels = self._levels[f]
            del levels[bisect_left(levels, mem)]

    def move(self, node: int, old: int, new: int, mem_free_mb: int) -> None:
        self.remove(node, old)
        self.add(node, new, mem_free_mb)

    def items(self, free_cores: int) -> Iterator[tuple[int, int]]:
        """``(node, mem_free_mb)`` of the nodes with exactly ``free_cores`` free cores,
        by free memory, then by how long they have been at that level."""
        groups = self._groups[free_cores]
        return ((node, mem) for mem in self._levels[free_cores] for node in groups[mem])

    def bucket(self, free_cores: int) -> Iterator[int]:
        """Node indices with exactly ``free_cores`` free cores (in :meth:`items` order)."""
        return (node for node, _ in self.items(free_cores))

    def tightest(self, cores: int, mem_mb: int) -> int | None:
        """The node left with the fewest free cores, then the least free memory, after
        taking ``cores`` and ``mem_mb``; among equals the one longest at that level.
        ``None`` if no node fits."""
        levels, groups = self._levels, self._groups
        for free in range(cores, self.max_cores + 1):
            lv = levels[free]
            i = bisect_left(lv, mem_mb)
            if i < len(lv):
                return next(iter(groups[free][lv[i]]))
        return None

    def loosest(self, cores: int, mem_mb: int) -> int | None:
        """The node left with the most free cores, then the most free memory; among
        equals the one longest at that level.  ``None`` if no node fits."""
        levels, groups = self._levels, self._groups
        for free in range(self.max_cores, cores - 1, -1):
            lv = levels[free]
            if lv and lv[-1] >= mem_mb:
                return next(iter(groups[free][lv[-1]]))
        return None


class ClusterView:
    """Read-only state of the cluster, as numpy arrays indexed by node.

    Attributes (all arrays have one entry per node):

    - ``cores``, ``mem_mb``: capacity; ``cores_free``, ``mem_free_mb``: not reserved.
    - ``speed``: relative to the reference core.
    - ``power_idle_w``, ``power_max_w``: the node type's power profile.
    - ``state``: a :class:`~rpiaas.model.PowerState` value (0 off, 1 booting, 2 on, 3 down).
    - ``utilization``: CPU utilisation in [0, 1]: in simulation the share of the node's
      cores that tasks reserved; live the utilisation measured on the node at its latest
      poll (``utilization_measured`` is then true).
    - ``tasks``: number of running tasks.
    - ``idle_since_s``: when the node last became idle while on; ``nan`` when busy or not on.
    - ``free_index``: a :class:`FreeCoresIndex` of the nodes that are on.
    - ``now``: the time of the batch being decided.
    - ``queue_length``: tasks waiting.
    """

    def __init__(self, nodes: tuple[Node, ...], *,
                 running_on: Sequence[Mapping[int, Task]] | None = None,
                 queue: Mapping[int, Task] | None = None) -> None:
        """``running_on`` (the tasks on each node) and ``queue`` (waiting tasks by id, in
        arrival order) are the control plane's own containers, read, never copied."""
        self.nodes = nodes
        self.names: tuple[str, ...] = tuple(n.name for n in nodes)
        self.type_names: tuple[str, ...] = tuple(n.type.name for n in nodes)
        n = len(nodes)
        self._cores = np.array([x.type.cores for x in nodes], dtype=np.int64)
        self._mem_mb = np.array([x.type.mem_mb for x in nodes], dtype=np.int64)
        self._cores_free = self._cores.copy()
        self._mem_free_mb = self._mem_mb.copy()
        self._speed = np.array([x.type.speed for x in nodes], dtype=np.float64)
        self._speed_list: list[float] = self._speed.tolist()  # for scalar reads on the hot path
        self._overhead_list: list[float] = [x.type.start_overhead_s for x in nodes]
        self._power_idle_w = np.array([x.type.power_idle_w for x in nodes], dtype=np.float64)
        self._power_max_w = np.array([x.type.power_max_w for x in nodes], dtype=np.float64)
        self._state = np.full(n, int(PowerState.ON), dtype=np.int64)
        self._utilization = np.zeros(n, dtype=np.float64)
        self._tasks = np.zeros(n, dtype=np.int64)
        self._idle_since_s = np.zeros(n, dtype=np.float64)
        max_cores = int(self._cores.max()) if n else 0
        self.free_index = FreeCoresIndex(max_cores)
        self.now = 0.0
        self.queue_length = 0
        self.utilization_measured = False
        self._running_on: Sequence[Mapping[int, Task]] = running_on or [{} for _ in nodes]
        self._queue: Mapping[int, Task] = queue if queue is not None else {}

        self.cores: IntArray = _readonly(self._cores)  # type: ignore[assignment]
        self.mem_mb: IntArray = _readonly(self._mem_mb)  # type: ignore[assignment]
        self.cores_free: IntArray = _readonly(self._cores_free)  # type: ignore[assignment]
        self.mem_free_mb: IntArray = _readonly(self._mem_free_mb)  # type: ignore[assignment]
        self.speed: FloatArray = _readonly(self._speed)  # type: ignore[assignment]
        self.power_idle_w: FloatArray = _readonly(self._power_idle_w)  # type: ignore[assignment]
        self.power_max_w: FloatArray = _readonly(self._power_max_w)  # type: ignore[assignment]
        self.state: IntArray = _readonly(self._state)  # type: ignore[assignment]
        self.utilization: FloatArray = _readonly(self._utilization)  # type: ignore[assignment]
        self.tasks: IntArray = _readonly(self._tasks)  # type: ignore[assignment]
        self.idle_since_s: FloatArray = _readonly(self._idle_since_s)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.nodes)

    # -- for the shells ------------------------------------------------------
    def utilization_sink(self, measured: bool) -> FloatArray:
        """The writable array behind :attr:`utilization`, for the shell that keeps it:
        the share of reserved cores in simulation, the utilisation measured on each
        node live (``measured``, which :attr:`utilization_measured` then says)."""
        self.utilization_measured = measured
        return self._utilization

    # -- convenience for policies ------------------------------------------
    def fits(self, task: Task) -> npt.NDArray[np.bool_]:
        """Mask of nodes that are on and have the free cores and memory for ``task``."""
        mask: npt.NDArray[np.bool_] = (
            (self._cores_free >= task.cores)
            & (self._mem_free_mb >= task.mem_mb)
            & (self._state == PowerState.ON)
        )
        return mask

    def could_ever_fit(self, task: Task) -> npt.NDArray[np.bool_]:
        """Mask of nodes whose capacity (not free share) is enough for ``task``."""
        return (self._cores >= task.cores) & (self._mem_mb >= task.mem_mb)

    def fits_node(self, task: Task, node: int) -> bool:
        """Whether ``node`` is on and has room for ``task`` now."""
        return bool(
            self._state[node] == PowerState.ON
            and self._cores_free[node] >= task.cores
            and self._mem_free_mb[node] >= task.mem_mb
        )

    def running(self, node: int) -> Mapping[int, Task]:
        """Tasks running on ``node`` by id (``task.est_end_s`` is their estimated end)."""
        return self._running_on[node]

    def queued(self) -> list[Task]:
        """Waiting tasks in arrival order."""
        return list(self._queue.values())

    def estimate_s(self, task: Task, node: int) -> float:
        """Runtime estimate of ``task`` on ``node``: its walltime if given, else exact
        (the node type's ``start_overhead_s`` plus the work at the node's speed)."""
        w = task.walltime_s
        if w is not None:
            return w
        return self._overhead_list[node] + task.work_core_s / (task.cores * self._speed_list[node])
