"""Fit a node type's link (``link_mbps``, ``pull_latency_s``) to the image pulls a run measured.

A run's ``tasks.csv`` gives each container task's ``pull_s``; the scenario gives its image
and the layers' sizes.  What a pull carried is what its node did not hold yet: the layers
of its image that no task started earlier on that node had brought (cache evictions are
not replayed: a run to calibrate on should keep its images, which a cache larger than
them does).  Pulls on one node that overlap in time shared the link
(:mod:`rpiaas.core.images`): they are taken together, as one *burst* that carried the union
of their missing layers from the first one's start to the last one's end, the link busy
throughout.  Each node type's bursts are fitted by least squares to

    seconds = latency_s + 8 * MB / link_mbps

(latency kept ≥ 0, as :func:`~rpiaas.analysis.stats.fit_line` does): the slope gives
``link_mbps``, the intercept ``pull_latency_s`` (a registry's round trips, the engine's
unpacking: the fixed part the simulation adds to each pull that carries something,
:mod:`rpiaas.core.images`).  A pull of nothing (every layer held) informs no fit.  A burst
of pulls that began together is one latency in the fit, as in the model, where each pays
its own at once; pulls that overlap only in part are taken together too, which puts their
latencies in the burst's link time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..model import Image, Task
from ..rundir.reader import Run
from .stats import fit_line

__all__ = ["LinkFit", "Pull", "fit_links", "pull_bursts"]

_MIN_PULL_S = 1e-6  # a pull shorter than this took nothing over the link (every layer held)


@dataclass(frozen=True)
class LinkFit:
    """A node type's fitted link: from ``bursts`` bursts of ``pulls`` pulls (``mb`` MB in all)."""

    type: str
    link_mbps: float
    latency_s: float
    bursts: int
    pulls: int
    mb: float
    rmse_s: float


@dataclass(frozen=True)
class Pull:
    """One measured pull: a task's node, its pull's start and length, and the layers missing."""

    node: str
    start_s: float
    pull_s: float
    layers: frozenset[str]


def _pulls(run: Run, tasks: Mapping[int, Task], images: Mapping[str, Image]) -> list[Pull]:
    """The pulls of ``run`` (the tasks with a ``pull_s``) with the layers each one lacked."""
    if run.pull_s is None:
        return []
    rows = [i for i in np.flatnonzero(np.isfinite(run.pull_s) & np.isfinite(run.start_s) & (run.node >= 0))]
    rows.sort(key=lambda i: (float(run.start_s[i]), int(run.task_id[i])))
    held: dict[str, set[str]] = {}
    out: list[Pull] = []
    for i in rows:
        task = tasks.get(int(run.task_id[i]))
        image = images.get(task.image) if task is not None and task.image is not None else None
        if image is None:
            continue
        node = run.node_names[int(run.node[i])]
        have = held.setdefault(node, set())
        ids = {layer.id for layer in image.layers}
        missing = frozenset(ids - have)
        have |= ids
        if float(run.pull_s[i]) > _MIN_PULL_S and missing:
            out.append(Pull(node, float(run.start_s[i]), float(run.pull_s[i]), missing))
    return out


def pull_bursts(pulls: Sequence[Pull], sizes: Mapping[str, float]) -> list[tuple[str, float, float, int]]:
    """Pulls that overlapped on one node taken together: ``(node, MB, seconds, pulls)`` each."""
    out: list[tuple[str, float, float, int]] = []
    by_node: dict[str, list[Pull]] = {}
    for p in pulls:
        by_node.setdefault(p.node, []).append(p)
    for node in sorted(by_node):
        group: list[Pull] = []
        end = -math.inf
        for p in sorted(by_node[node], key=lambda p: p.start_s):
            if group and p.start_s >= end:  # the link was idle since the last one ended
                out.append(_burst(node, group, sizes))
                group = []
            end = max(end, p.start_s + p.pull_s) if group else p.start_s + p.pull_s
            group.append(p)
        if group:
            out.append(_burst(node, group, sizes))
    return out


def _burst(node: str, group: Sequence[Pull], sizes: Mapping[str, float]) -> tuple[str, float, float, int]:
    layers = frozenset().union(*(p.layers for p in group))
    start = min(p.start_s for p in group)
    end = max(p.start_s + p.pull_s for p in group)
    return node, sum(sizes[lid] for lid in layers), end - start, len(group)


def fit_links(runs: Sequence[Run], tasks: Mapping[int, Task], images: Mapping[str, Image],
              types: Mapping[str, str]) -> dict[str, LinkFit]:
    """Each node type's link fitted to the pulls of ``runs`` (pooled): ``tasks`` are the
    scenario's by id (their images), ``images`` its images, ``types`` each node's type by name."""
    sizes = {layer.id: layer.size_mb for image in images.values() for layer in image.layers}
    by_type: dict[str, list[tuple[float, float, int]]] = {}
    for run in runs:
        for node, size_mb, took_s, n in pull_bursts(_pulls(run, tasks, images), sizes):
            t = types.get(node, "")
            if t:
                by_type.setdefault(t, []).append((size_mb, took_s, n))
    fits: dict[str, LinkFit] = {}
    for t in sorted(by_type):
        bursts = by_type[t]
        mb = np.array([x[0] for x in bursts], dtype=np.float64)
        secs = np.array([x[1] for x in bursts], dtype=np.float64)
        a, b = fit_line(8.0 * mb, secs)
        if not (b > 0 and math.isfinite(b)):
            continue
        latency = a if a > 1e-9 else 0.0
        rmse = float(np.sqrt(np.mean((a + b * 8.0 * mb - secs) ** 2)))
        fits[t] = LinkFit(t, 1.0 / b, latency, len(bursts), sum(x[2] for x in bursts), float(mb.sum()), rmse)
    return fits
