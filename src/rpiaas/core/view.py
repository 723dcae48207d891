"""ClusterView: what a policy sees of the cluster.

One view lives for a whole run.  Its numpy arrays are updated in place by the
control plane (reservations, power states) and by the shell (utilisation:
modelled in simulation, measured on the testbed); a policy gets read-only
views of them, never copies, so looking is free and writing raises.

Index ``i`` of every array is node ``nodes[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ..model import Node, PowerState, Task, job_cores
from .images import ImageCaches
from .ledger import FreeCoresIndex, Ledger

__all__ = ["ClusterView", "FreeCoresIndex"]  # FreeCoresIndex: the type of ``free_index``

IntArray = npt.NDArray[np.int64]
_ON = int(PowerState.ON)
FloatArray = npt.NDArray[np.float64]


def _readonly(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    v: npt.NDArray[np.generic] = a.view()
    v.flags.writeable = False
    return v


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

    :meth:`image_mb` and :meth:`image_share` say how much of a container task's image each
    node holds (in a scenario with ``images:``).
    """

    def __init__(self, nodes: tuple[Node, ...], ledger: Ledger | None = None,
                 queue: Mapping[int, Task] | None = None) -> None:
        """``ledger`` (every node's resources and tasks) and ``queue`` (waiting tasks by id,
        in arrival order) are the control plane's own, read, never copied; without them
        the view shows every node on and idle."""
        self.nodes = nodes
        self.names: tuple[str, ...] = tuple(n.name for n in nodes)
        self.type_names: tuple[str, ...] = tuple(n.type.name for n in nodes)
        n = len(nodes)
        if ledger is None:
            ledger = Ledger(nodes, [int(PowerState.ON)] * n)
        self._ledger = ledger
        self._speed = np.array([x.type.speed for x in nodes], dtype=np.float64)
        self._types = [x.type for x in nodes]
        self._power_idle_w = np.array([x.type.power_idle_w for x in nodes], dtype=np.float64)
        self._power_max_w = np.array([x.type.power_max_w for x in nodes], dtype=np.float64)
        self._utilization = np.zeros(n, dtype=np.float64)
        self.free_index: FreeCoresIndex = ledger.index
        self.now = 0.0
        self.utilization_measured = False
        self._queue: Mapping[int, Task] = queue if queue is not None else {}
        # the ledger's arrays, for the masks below (the policy gets read-only views)
        self._cores, self._mem_mb = ledger.cores, ledger.mem_mb
        self._cores_free, self._mem_free_mb, self._state = (ledger.cores_free, ledger.mem_free_mb,
                                                            ledger.state)

        self.cores: IntArray = _readonly(ledger.cores)  # type: ignore[assignment]
        self.mem_mb: IntArray = _readonly(ledger.mem_mb)  # type: ignore[assignment]
        self._cores_free_ro: IntArray = _readonly(ledger.cores_free)  # type: ignore[assignment]
        self._mem_free_ro: IntArray = _readonly(ledger.mem_free_mb)  # type: ignore[assignment]
        self.speed: FloatArray = _readonly(self._speed)  # type: ignore[assignment]
        self.power_idle_w: FloatArray = _readonly(self._power_idle_w)  # type: ignore[assignment]
        self.power_max_w: FloatArray = _readonly(self._power_max_w)  # type: ignore[assignment]
        self.state: IntArray = _readonly(ledger.state)  # type: ignore[assignment]
        self._utilization_ro: FloatArray = _readonly(self._utilization)  # type: ignore[assignment]
        self._tasks_ro: IntArray = _readonly(ledger.tasks)  # type: ignore[assignment]
        # in simulation, while the ledger keeps its lists alone (no hook reads the view during a
        # step), the reserved share of cores is derived when the view is read, not kept
        self._share_on_read = False
        self.idle_since_s: FloatArray = _readonly(ledger.idle_since_s)  # type: ignore[assignment]
        self._images: ImageCaches | None = None

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def queue_length(self) -> int:
        """Tasks waiting."""
        return len(self._queue)

    # -- the arrays that follow the reservations ------------------------------
    def _catch_up(self) -> None:
        """The arrays up to date with the ledger, when it kept its plain lists alone
        (:attr:`Ledger.arrays_follow <rpiaas.core.ledger.Ledger.arrays_follow>`)."""
        self._ledger.sync_view()
        if self._share_on_read:
            np.divide(self._cores - self._cores_free, self._cores, out=self._utilization)

    @property
    def cores_free(self) -> IntArray:
        if self._ledger.behind:
            self._catch_up()
        return self._cores_free_ro

    @property
    def mem_free_mb(self) -> IntArray:
        if self._ledger.behind:
            self._catch_up()
        return self._mem_free_ro

    @property
    def tasks(self) -> IntArray:
        if self._ledger.behind:
            self._catch_up()
        return self._tasks_ro

    @property
    def utilization(self) -> FloatArray:
        if self._ledger.behind:
            self._catch_up()
        return self._utilization_ro

    def share_as_utilization(self) -> None:
        """Simulation, with the ledger's arrays kept on read: :attr:`utilization` is the
        reserved share of each node's cores, derived when it is read."""
        self._share_on_read = True

    # -- for the shells ------------------------------------------------------
    def utilization_sink(self, measured: bool) -> FloatArray:
        """The writable array behind :attr:`utilization`, for the shell that keeps it:
        the share of reserved cores in simulation, the utilisation measured on each
        node live (``measured``, which :attr:`utilization_measured` then says)."""
        self.utilization_measured = measured
        self._share_on_read = False
        return self._utilization

    def attach_images(self, images: ImageCaches) -> None:
        """Show the nodes' image caches (:mod:`rpiaas.core.images`) through :meth:`image_mb`."""
        self._images = images

    # -- images ------------------------------------------------------------
    def image_mb(self, task: Task) -> FloatArray:
        """MB of ``task``'s image each node holds in its cache (layers fully pulled): all
        zeros for a task without an image, or in a run whose scenario describes none."""
        images = self._images
        image = images.image_of(task) if images is not None else None
        if images is None or image is None:
            return np.zeros(len(self.nodes), dtype=np.float64)
        return images.held_mb_all(image)

    def image_share(self, task: Task) -> FloatArray:
        """The share (0 to 1) of ``task``'s image each node holds: :meth:`image_mb` over the
        image's size (zeros where the task has no described image)."""
        images = self._images
        image = images.image_of(task) if images is not None else None
        held = self.image_mb(task)
        if image is None or image.size_mb <= 0:
            return held
        held /= image.size_mb
        return held

    # -- convenience for policies ------------------------------------------
    def fits(self, task: Task) -> npt.NDArray[np.bool_]:
        """Mask of nodes that are on and have the free cores and memory for ``task``."""
        if self._ledger.behind:
            self._catch_up()
        mask: npt.NDArray[np.bool_] = (self._cores_free >= task.cores) & (self._mem_free_mb >= task.mem_mb)
        if self._ledger.not_on:  # else every node is on
            mask &= self._state == _ON
        return mask

    def could_ever_fit(self, task: Task) -> npt.NDArray[np.bool_]:
        """Mask of nodes whose capacity (not free share) is enough for ``task``."""
        return (self._cores >= task.cores) & (self._mem_mb >= task.mem_mb)

    def fits_node(self, task: Task, node: int) -> bool:
        """Whether ``node`` is on and has room for ``task`` now."""
        if self._ledger.behind:
            self._catch_up()
        return bool(
            self._state[node] == _ON
            and self._cores_free[node] >= task.cores
            and self._mem_free_mb[node] >= task.mem_mb
        )

    def running(self, node: int) -> Mapping[int, Task]:
        """Tasks running on ``node`` by id (``task.est_end_s`` is their estimated end)."""
        return self._ledger.running_on[node]

    def running_tasks(self) -> Mapping[int, Task]:
        """Every running task by id (a parallel job once: ``task.placed`` are its nodes)."""
        return self._ledger.running

    def running_by_end(self) -> Sequence[tuple[float, int, Task]]:
        """Every running task as ``(est_end_s, id, task)``, by estimated end then id (a parallel
        job once), kept in that order by the ledger as tasks start and end: read it, do not
        change it."""
        return self._ledger.running_by_end()

    def room_times(self, task: Task, now: float, k: int = 1) -> list[tuple[float, int]] | None:
        """When nodes that are on come to have room for ``task`` (a part of it, for a job:
        ``task.cores`` and ``task.mem_mb``) as the running tasks end by their estimates (one
        that overran: ``now``), until ``k`` of them have: every node with room by the
        ``k``-th one's time, as ``(time, node)`` by time then index (``inf`` for the rest
        when fewer than ``k`` ever have room), or ``None`` when fewer than ``k`` nodes that
        are on could ever hold it (:meth:`Ledger.room_times
        <rpiaas.core.ledger.Ledger.room_times>`)."""
        return self._ledger.room_times(task.cores, task.mem_mb, k, now)

    def queued(self) -> list[Task]:
        """Waiting tasks in arrival order."""
        return list(self._queue.values())

    def estimate_s(self, task: Task, node: int) -> float:
        """Runtime estimate of ``task`` on ``node``: its walltime if given, else exact
        (:meth:`NodeType.runtime_s <rpiaas.model.NodeType.runtime_s>`)."""
        w = task.walltime_s
        if w is not None:
            return w
        if task.nodes != 1:  # a job's parts: its work over all its cores, at this node's pace
            return self._types[node].runtime_s(task.work_core_s, job_cores(task))
        return self._types[node].runtime_s(task.work_core_s, task.cores)
