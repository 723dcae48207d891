"""Container images on the nodes: each node's layer cache and the pulls on its link.

The rules, the same wherever this model runs (the simulation carries them out; a
policy reads the caches through :meth:`ClusterView.image_mb
<rpiaas.core.view.ClusterView.image_mb>`):

- A ``container`` task placed on a node first pulls the layers of its image that the node
  does not hold.  Its run begins when the last of them is in: ``start_s`` is its
  placement (its cores and memory are reserved from then on), ``pull_s`` the time its
  layers took, and ``end_s`` is the pull's end plus its runtime.
- A layer is pulled once per node: a second task that needs a layer already being
  pulled waits for that pull, and a layer two images share is pulled and cached once.
- The node's link (:attr:`NodeType.link_mbps <rpiaas.model.NodeType.link_mbps>`) is shared
  equally among the layers being pulled on it at the same time (processor sharing, as
  TCP flows on one bottleneck share it): a pull's end moves when another starts or ends.
  Alone, ``size_mb`` takes :meth:`NodeType.pull_s <rpiaas.model.NodeType.pull_s>`.
- A pull that carries something also pays a fixed part once, after its last layer came in:
  :attr:`NodeType.pull_latency_s <rpiaas.model.NodeType.pull_latency_s>` (a registry's round
  trips, the engine unpacking and committing the image; 0 unless the node type gives it).  It
  does not use the link: two pulls at once share the link and each pays its own latency.  A
  task whose image's layers are all held pulls nothing and pays nothing (``pull_s`` 0).  A
  layer is cached when it came in: a task that needs it from then on waits for nothing.
- Each node keeps at most ``image_cache_mb`` of layers.  To make room for a pull, the
  least recently used layers that no task on the node is using (pulling or running) are
  evicted.  Layers in use are never evicted: while they alone exceed the capacity the
  cache holds more than it, until they are released.

Deterministic: layers are pulled and evicted in a fixed order (the image's layer order,
then least recently used first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..model import Image, Node, Task

__all__ = ["ImageCaches", "NodeImages", "PullDone"]

_EPS_MB = 1e-9  # a layer with less than this left is in (floating-point crumbs of the sharing)


@dataclass
class PullDone:
    """A task whose pull ended: it runs from ``end_s``, after ``pull_s`` of pulling."""

    task: Task
    end_s: float
    pull_s: float


@dataclass
class _Waiter:
    task: Task
    epoch: int
    since_s: float
    missing: set[str]
    done_s: float = 0.0  # when its last missing layer came in
    end_s: float = 0.0  # when its pull ends: ``done_s`` plus the node's pull latency


@dataclass
class NodeImages:
    """One node's cache of layers and the pulls on its link."""

    rate_mb_s: float
    capacity_mb: float
    sizes: Mapping[str, float]  # every layer's size by id
    latency_s: float = 0.0  # paid once by each pull that carries something, after its last layer
    index: int = 0  # the node's index
    # layer -> which nodes hold it, one entry per node (shared by every node of the cluster)
    holders: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    cached: OrderedDict[str, float] = field(default_factory=OrderedDict)  # layer -> MB, LRU first
    used_by: dict[str, int] = field(default_factory=dict)  # layer -> tasks using it (pulling or running)
    pulling: dict[str, float] = field(default_factory=dict)  # layer -> MB still to pull
    waiters: list[_Waiter] = field(default_factory=list)
    at_s: float = 0.0  # when ``pulling`` was last brought up to date
    version: int = 0  # bumped at every change of the pulls: a stale wake-up is ignored

    @property
    def held_mb(self) -> float:
        """MB of layers cached (complete) on the node."""
        return sum(self.cached.values())

    def _ended(self, now: float) -> list[str]:
        """The layers being pulled with nothing left at ``now`` (or so little that their end
        is ``now`` to the last bit of a double)."""
        per_mb_s = len(self.pulling) / self.rate_mb_s
        return [lid for lid, left in self.pulling.items() if left <= _EPS_MB or now + left * per_mb_s <= now]

    def advance(self, now: float) -> bool:
        """Bring every pull up to ``now``, the link shared equally among the layers being
        pulled, a pull at a time: each layer that ends meanwhile is cached at its end, and the
        tasks waiting for it learn when.  Whether a layer came in."""
        came = False
        while self.pulling:
            if now > self.at_s:
                step_to = min(now, self._pull_end_s())
                done = (step_to - self.at_s) * self.rate_mb_s / len(self.pulling)
                for lid in self.pulling:
                    self.pulling[lid] -= done
                self.at_s = step_to
            ended = self._ended(self.at_s)
            if not ended:
                break
            for lid in ended:
                del self.pulling[lid]
                self.keep(lid)
            for w in self.waiters:
                if w.missing and not w.missing.isdisjoint(ended):
                    w.missing.difference_update(ended)
                    w.done_s = self.at_s
                    w.end_s = self.at_s + self.latency_s
            came = True
        self.at_s = max(self.at_s, now)
        return came

    def keep(self, lid: str) -> None:
        """Cache layer ``lid`` (the most recently used)."""
        self.cached[lid] = self.sizes[lid]
        self.cached.move_to_end(lid)
        self.holders[lid][self.index] = True

    def evict(self, lid: str) -> float:
        """Drop layer ``lid`` from the cache; its MB."""
        self.holders[lid][self.index] = False
        return self.cached.pop(lid)

    def next_end_s(self) -> float | None:
        """When the next pull on the node ends at the current sharing (None: no pull): a
        layer's transfer, or a task's pull whose last layer came in and whose latency is over
        (now, when that is past and the task is still to be settled)."""
        due = [w.end_s for w in self.waiters if not w.missing]
        if self.pulling:
            due.append(self._pull_end_s())
        return max(self.at_s, min(due)) if due else None

    def _pull_end_s(self) -> float:
        least = min(self.pulling.values())
        return self.at_s + max(0.0, least) * len(self.pulling) / self.rate_mb_s


class ImageCaches:
    """Every node's :class:`NodeImages`, and the tasks pulling on them.

    :param nodes: the cluster's nodes (index order).
    :param images: the scenario's images by name.
    """

    def __init__(self, nodes: Sequence[Node], images: Mapping[str, Image]) -> None:
        self.images = dict(images)
        self._sizes = {layer.id: layer.size_mb for image in self.images.values() for layer in image.layers}
        self._holders = {lid: np.zeros(len(nodes), dtype=np.bool_) for lid in self._sizes}
        self.nodes = [NodeImages(n.type.pull_rate_mb_s(), n.type.image_cache_mb, self._sizes,
                                 n.type.pull_latency_s, i, self._holders)
                      for i, n in enumerate(nodes)]
        self._holding: dict[int, tuple[int, tuple[str, ...]]] = {}  # task id -> (node, layers it uses)

    # ------------------------------------------------------------ queries
    def image_of(self, task: Task) -> Image | None:
        """The image ``task`` runs, if the scenario describes it."""
        name = task.image
        return None if name is None else self.images.get(name)

    def held_mb(self, node: int, image: Image) -> float:
        """MB of ``image``'s layers cached on ``node``."""
        cached = self.nodes[node].cached
        return sum(layer.size_mb for layer in image.layers if layer.id in cached)

    def held_mb_all(self, image: Image) -> npt.NDArray[np.float64]:
        """MB of ``image``'s layers cached on each node (one entry per node)."""
        out = np.zeros(len(self.nodes), dtype=np.float64)
        for layer in image.layers:
            out += layer.size_mb * self._holders[layer.id]
        return out

    # ------------------------------------------------------------ changes
    def begin(self, task: Task, node: int, now: float) -> PullDone | None:
        """``task`` was placed on ``node`` at ``now``: use its image's layers there, pulling
        those missing.  Returns its :class:`PullDone` at once when every layer is cached
        (``pull_s`` 0), else ``None``: :meth:`settle` gives it when its last layer is in."""
        image = self.image_of(task)
        if image is None:
            return PullDone(task, now, 0.0)
        self.release(task)
        ni = self.nodes[node]
        ni.advance(now)
        ids = tuple(layer.id for layer in image.layers)
        for lid in ids:
            ni.used_by[lid] = ni.used_by.get(lid, 0) + 1
            if lid in ni.cached:
                ni.cached.move_to_end(lid)  # used now: the most recently used
        self._holding[task.id] = (node, ids)
        missing = {lid for lid in ids if lid not in ni.cached}
        if not missing:
            return PullDone(task, now, 0.0)
        new = [layer for layer in image.layers if layer.id in missing and layer.id not in ni.pulling]
        self._make_room(ni, sum(layer.size_mb for layer in new))
        for layer in new:
            ni.pulling[layer.id] = layer.size_mb
        ni.waiters.append(_Waiter(task, task.epoch, now, missing))
        ni.version += 1
        return None

    def settle(self, node: int, now: float) -> list[PullDone]:
        """Pulls on ``node`` that ended by ``now``: their layers cached, and the tasks whose
        last layer that was, each at the time its pull ended (its last layer in, its latency
        paid; in the order they began pulling)."""
        ni = self.nodes[node]
        came = ni.advance(now)
        if not came and all(w.missing or w.end_s > now for w in ni.waiters):
            return []
        ni.version += 1
        out: list[PullDone] = []
        keep: list[_Waiter] = []
        for w in ni.waiters:
            if w.missing or w.end_s > now:  # a layer still to come, or its latency still to pay
                keep.append(w)
            elif w.task.epoch == w.epoch and w.task.node == node:  # still placed there
                out.append(PullDone(w.task, w.end_s, w.end_s - w.since_s))
        ni.waiters = keep
        self._make_room(ni, 0.0)
        return out

    def note_pulled(self, task: Task, node: int) -> None:
        """``task``'s image is on ``node`` now, pulled there outside this model (a live run's
        agent pulled it): its layers are cached, the least recently used making room."""
        image = self.image_of(task)
        if image is None:
            return
        ni = self.nodes[node]
        new = [layer for layer in image.layers if layer.id not in ni.cached]
        self._make_room(ni, sum(layer.size_mb for layer in new))
        for layer in image.layers:
            ni.keep(layer.id)

    def release(self, task: Task) -> None:
        """``task`` no longer uses its layers (it ended, failed, or moved): they may be
        evicted.  A pull it waited for goes on (the layer is cached when it ends)."""
        held = self._holding.pop(task.id, None)
        if held is None:
            return
        node, ids = held
        ni = self.nodes[node]
        for lid in ids:
            n = ni.used_by[lid] - 1
            if n:
                ni.used_by[lid] = n
            else:
                del ni.used_by[lid]
        ni.waiters = [w for w in ni.waiters if w.task is not task]

    # ------------------------------------------------------------ the cache
    def _make_room(self, ni: NodeImages, incoming_mb: float) -> None:
        """Evict least recently used layers not in use until ``incoming_mb`` more fits (a
        layer being pulled takes its whole size)."""
        sizes = self._sizes
        need = ni.held_mb + sum(sizes[lid] for lid in ni.pulling) + incoming_mb - ni.capacity_mb
        if need <= 0:
            return
        for lid in list(ni.cached):
            if need <= 0:
                break
            if lid in ni.used_by:
                continue
            need -= ni.evict(lid)
