"""Parallel (rigid) jobs: where the parts of a job that spans nodes go.

A job asks for ``nodes`` parts, one per node, each with its cores (``Task.parts``, the
largest first, or ``cores`` each) and ``mem_mb``.  Its parts start together and end
together, so the control plane places all of them at once or none:

- while fewer nodes have room for a part than it has parts, no hook is asked (no answer
  could place it);
- a policy asked alone that declares its ``index_rule`` is answered from the free index, as
  for a task on one node: the job's ``nodes`` nodes in the rule's order, ties by index;
- ``rpiaas_place`` may answer a list of ``nodes`` distinct node indices (part by part);
  each is checked (type, count, duplicates, room for its part) and a wrong one stops the run
  with one located error;
- else the nodes with room for a part that pass every ``rpiaas_filter`` are ranked by their
  summed ``rpiaas_score`` (best first, ties by node index; by index alone without a score),
  and the first ``nodes`` of them are taken;
- a node kept for an EASY reservation is left out where a part there would delay it.

:class:`JobPlacement` reads the ledger and the view and writes nothing; a task on one node
never comes here (:class:`~rpiaas.core.placement.Placement` keeps its fast path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..model import Task, part_cores
from ..policy.base import PolicyError, Reservation
from ..policy.plugins import HookCall
from .placement import Placement
from .view import ClusterView

__all__ = ["JobPlacement"]


class JobPlacement:
    """The choice of nodes for a parallel job (see the module's docstring).

    :param view: what the hooks are given.
    :param placement: the single-node placement, whose answer checks are shared.
    :param place_hook, filter_hook, score_hook: the control plane's hook calls.
    """

    def __init__(self, view: ClusterView, placement: Placement, place_hook: HookCall,
                 filter_hook: HookCall, score_hook: HookCall) -> None:
        self.view = view
        self._placement = placement
        self._h_place = place_hook
        self._h_filter = filter_hook
        self._h_score = score_hook

    def nodes_of(self, answer: Any, task: Task) -> tuple[int, ...]:
        """``rpiaas_place``'s ``answer`` for job ``task`` as its nodes, part by part, or a
        :class:`PolicyError` naming the policy, the hook and the task (the control plane adds
        the time): a list or tuple of ``task.nodes`` distinct node indices (ints or numpy
        integers, nothing coerced), each with room for its part."""
        pl = self._placement
        who = pl.policies("rpiaas_place")
        k = task.nodes
        if not isinstance(answer, (list, tuple)):
            raise PolicyError(f"{who}: rpiaas_place answered {answer!r} ({type(answer).__name__}) for "
                              f"task {task.id}, a job over {k} nodes: expected a list of {k} node indices")
        if len(answer) != k:
            raise PolicyError(f"{who}: rpiaas_place answered {len(answer)} nodes for task {task.id}, "
                              f"a job over {k} nodes")
        nodes = tuple(pl.node_index(n, "rpiaas_place", f"put a part of task {task.id} on")
                      for n in answer)
        seen: set[int] = set()
        for n in nodes:
            if n in seen:
                raise PolicyError(f"{who}: rpiaas_place put two parts of task {task.id} on node {n}; "
                                  f"a job's parts need {k} distinct nodes")
            seen.add(n)
        for n, cores in zip(nodes, part_cores(task), strict=True):
            pl.check_room(task, n, cores)
        return nodes

    def choose(self, task: Task, res: Reservation | None, head: Task | None,
               now: float) -> tuple[tuple[int, ...], int] | None:
        """The nodes for job ``task``, part by part, and how many of them are spare nodes of
        ``head``'s reservation that it takes (nodes where it would delay the reserved job,
        :attr:`Placement.spare <rpiaas.core.placement.Placement.spare>`, counted here once
        for the pass to spend), or ``None`` if it cannot start now."""
        view = self.view
        k = task.nodes
        pl = self._placement
        keep = res is not None and head is not None
        if not view.free_index.has_room(k, task.cores, task.mem_mb):
            return None  # fewer nodes with room than parts, from the free index (the arrays left alone)
        rule = pl.job_rule
        known: frozenset[int] | None = None  # the reservation's nodes with room it would delay
        if rule is not None:  # the policy's answer, asked of the free index (Placement.job_rule)
            if keep:
                # no hook is asked: the count of nodes it could take may refuse it first
                n_room, known = pl.kept_out(res, head, task, now)  # type: ignore[arg-type]
                if known and len(known) > n_room - k + pl.spare:
                    return None  # fewer than k nodes with room where it keeps the reservation
            ranked = rule(k, task.cores, task.mem_mb)
            assert ranked is not None  # (has_room: k nodes have room)
            if known is None:
                return ranked, 0
            spent = len(known.intersection(ranked))
            if spent <= pl.spare:
                return ranked, spent
            # the answer would delay the reservation: the nodes that would not, as below
        mask = view.fits(task)  # room for the largest part
        if np.count_nonzero(mask) < k:  # fewer nodes with room than parts: no answer could do
            return None
        if rule is None and self._h_place.implemented:
            answer = self._h_place.first(task=task, view=view)
            if answer is not None:
                nodes = self.nodes_of(answer, task)
                spent = len(pl.delaying(res, head, task, nodes, now, pl.spare)) if keep else 0  # type: ignore[arg-type]
                allowed = spent <= pl.spare
                if allowed and self._h_filter.implemented:
                    masks = [np.asarray(m, dtype=bool) for m in self._h_filter.all(task=task, view=view)]
                    allowed = all(bool(m[n]) for m in masks for n in nodes)
                if allowed:
                    return nodes, spent
            elif not (self._h_filter.implemented or self._h_score.implemented):
                return None
        if self._h_filter.implemented:
            for m in self._h_filter.all(task=task, view=view):
                mask &= np.asarray(m, dtype=bool)
        idx = mask.nonzero()[0]
        if idx.size < k:
            return None
        kept: set[int] = set()  # nodes of a reservation this job would delay it on
        if keep:
            assert res is not None and head is not None
            room = mask.tolist()
            # the job needs k of the nodes left: more than ``limit`` delayed and it cannot
            # start, which the search says as soon as it finds one more
            limit = int(idx.size) - k + pl.spare
            if known is not None:  # (the free index's answer: no filter narrowed the nodes with room)
                kept = set(known)
            else:
                kept = pl.delaying(res, head, task, [r for r in res.nodes or (res.node,) if room[r]], now, limit)
            if len(kept) > limit:
                return None
            if not pl.spare:
                mask[list(kept)] = False
                kept = set()
                idx = mask.nonzero()[0]
                if idx.size < k:
                    return None
        total: npt.NDArray[np.float64] | None = None
        if self._h_score.implemented:
            scores = self._h_score.all(task=task, view=view)
            if scores:
                total = np.broadcast_to(np.sum(scores, axis=0, dtype=np.float64), mask.shape)
        if total is not None:
            # best score first, ties by node index (a stable sort of the kept nodes)
            idx = idx[np.argsort(-total[idx], kind="stable")]
        if not kept:
            return tuple(int(n) for n in idx[:k]), 0
        chosen: list[int] = []  # at most ``spare`` of the reservation's nodes it would delay
        used = 0
        for n in idx.tolist():
            if n in kept:
                if used == pl.spare:
                    continue
                used += 1
            chosen.append(n)
            if len(chosen) == k:
                return tuple(chosen), used
        return None
