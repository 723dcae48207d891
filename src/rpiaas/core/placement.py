"""Where a task goes: the placement hooks asked in their documented order.

:class:`Placement` is the control plane's choice of a node for one task:
``rpiaas_place`` first (a filter can overrule its answer), else the nodes with
room that pass every ``rpiaas_filter``, the best by summed ``rpiaas_score``,
else the first; a node kept for an EASY-style reservation is left out when
starting the task there would delay the reserved one.  It reads the ledger
and the view, writes nothing, and fills a decision-trace record when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pluggy

from ..model import Node, PowerState, Task
from ..policy.base import Policy, PolicyError, Reservation
from ..policy.plugins import HookCall
from .decisions import RESERVATION, DecisionTrace
from .ledger import Ledger
from .view import ClusterView

__all__ = ["Placement"]

_ON = int(PowerState.ON)

def _index_rule(pm: pluggy.PluginManager) -> str | None:
    """The free index's search that the run's one ``rpiaas_place`` declares it answers with
    (:attr:`Policy.index_rule <rpiaas.policy.base.Policy.index_rule>`), or None."""
    impls = pm.hook.rpiaas_place.get_hookimpls()
    if len(impls) != 1 or not isinstance(impls[0].plugin, Policy):
        return None
    return type(impls[0].plugin).declared_index_rule()


class Placement:
    """The choice of a node for a task, by the policy's hooks (see the module's docstring).

    :param nodes: the cluster's nodes, in index order.
    :param view: what the hooks are given.
    :param ledger: the nodes' free resources and running tasks.
    :param pm: the run's plugin manager (to name a policy in an error).
    :param place_hook, filter_hook, score_hook: the control plane's hook calls.
    :param trace: the decision trace, when the run writes one.
    """

    def __init__(self, nodes: tuple[Node, ...], view: ClusterView, ledger: Ledger,
                 pm: pluggy.PluginManager, place_hook: HookCall, filter_hook: HookCall,
                 score_hook: HookCall, trace: DecisionTrace | None) -> None:
        self.nodes = nodes
        self.view = view
        self.pm = pm
        self._h_place = place_hook
        self._place = place_hook.caller("task", "view")
        self._h_filter = filter_hook
        self._h_score = score_hook
        self._trace = trace
        self._cf, self._mf, self._st = ledger.cores_free_list, ledger.mem_free_list, ledger.state_list
        self._running_on = ledger.running_on
        self._running = ledger.running
        self._free_index = ledger.index
        self._n = len(nodes)
        #: How many nodes of the pass's reservation for a parallel job a later task may still
        #: take though it ends after the reserved start (the job needs fewer nodes than have
        #: room by then: EASY's extra nodes); the queue pass sets and spends it, 0 otherwise.
        self.spare = 0
        # only rpiaas_place: its answer, checked, is the choice (outside a reservation)
        self._place_only = place_hook.implemented and not (filter_hook.implemented
                                                           or score_hook.implemented)
        # ``rule(cores, mem_mb)``: the node the policy would answer, asked of the free index
        # directly (a policy that declares its index_rule, asked alone), or None
        rule = _index_rule(pm) if self._place_only else None
        self.rule: Callable[[int, int], int | None] | None = (
            None if rule is None else getattr(ledger.index, rule))
        # ``job_rule(k, cores, mem_mb)``: the same for a parallel job's ``k`` nodes, or None
        self.job_rule: Callable[[int, int, int], tuple[int, ...] | None] | None = (
            None if rule is None else getattr(ledger.index, f"{rule}_nodes"))
        # (reservation, {node: (tasks on it, cores and memory they free by its start)}): what
        # delaying() summed, valid while the pass that asks goes on (forget())
        self._freed_by: tuple[Reservation, dict[int, tuple[int, int, int]]] | None = None
        # the one rpiaas_score implementation, called by position (no keyword dict, no list)
        # (reservation, its nodes as a set): a job's reservation holds up to every node
        self._res_nodes: tuple[Reservation, frozenset[int]] | None = None
        # one node of each type (the first), to ask a task's estimate once per type
        self._type_firsts = tuple({name: i for i, name in reversed(list(enumerate(view.type_names)))}.values())
        self._one_type = len(self._type_firsts) <= 1
        # (reservation, key, (nodes with room, nodes kept out)): what kept_out() last found
        self._kept: tuple[Reservation, tuple[int, int, tuple[bool, ...], int], tuple[int, frozenset[int]]] | None = None
        self._score1: Callable[..., Any] | None = (
            score_hook.caller("task", "view")
            if len(pm.hook.rpiaas_score.get_hookimpls()) == 1 else None)

    def policies(self, hook: str) -> str:
        """The names of the policies that implement ``hook``, for an error message."""
        names = [getattr(impl.plugin, "NAME", "") or type(impl.plugin).__name__
                 for impl in getattr(self.pm.hook, hook).get_hookimpls()]
        return "policy " + " or ".join(map(repr, names))

    def node_index(self, n: Any, hook: str, what: str) -> int:
        """``n`` as a node index, or a :class:`PolicyError` saying it is none.  Only an int (or
        a numpy integer) is one: nothing is coerced (a float, a bool or a string is an error)."""
        if type(n) is not int and not isinstance(n, np.integer):
            raise PolicyError(f"{self.policies(hook)}: {hook} {what} {n!r} ({type(n).__name__}), "
                              f"which is not a node index (an int)")
        i = int(n)
        if not 0 <= i < len(self.nodes):
            raise PolicyError(f"{self.policies(hook)}: {hook} {what} node {i}, "
                              f"out of range: the cluster has nodes 0 to {len(self.nodes) - 1}")
        return i

    def check_room(self, task: Task, n: int, cores: int, hook: str = "rpiaas_place") -> None:
        """A :class:`PolicyError` unless node ``n`` is on with ``cores`` cores and the task's
        memory free: it says whether the node was off or full, and what was asked and free."""
        st = self._st[n]
        if st == _ON and self._cf[n] >= cores and self._mf[n] >= task.mem_mb:
            return
        name = self.nodes[n].name
        if st != _ON:
            why = f"which has no room: it is {PowerState(st).name.lower()}, not on"
        else:
            why = (f"which has no room: it is full; the task asks {cores} cores and {task.mem_mb} MB there, "
                   f"the node has {self._cf[n]} cores and {self._mf[n]} MB free")
        raise PolicyError(f"{self.policies(hook)}: {hook} put task {task.id} on node {n} ({name}), {why}")

    def choose(self, task: Task, res: Reservation | None, head: Task | None, now: float,
                rec: dict[str, Any] | None = None) -> int:
        """The node for ``task``, or -1; fills the decision-trace record ``rec`` when given.

        Tracing asks exactly the hooks an untraced pass asks, in the same
        order, so it cannot change a decision.
        """
        view = self.view
        rule = self.rule
        if rule is not None and rec is None:
            # the policy's answer, asked of the free index (it declares so)
            found = rule(task.cores, task.mem_mb)
            if found is None:
                return -1
            if res is None or head is None or self.respects(res, head, task, found, now):
                return found
            if self._n == 1:
                return -1  # no other node to fall back on: the hooks below would find none
            # the answer would delay the reservation: the hooks below decide, as they would
        if self._place_only and rec is None and (res is None or head is None):
            n = self._place(task, view)
            if n is None:
                return -1
            if type(n) is not int or not 0 <= n < self._n:
                n = self.node_index(n, "rpiaas_place", f"put task {task.id} on")
            if not (self._st[n] == _ON and self._cf[n] >= task.cores and self._mf[n] >= task.mem_mb):
                self.check_room(task, n, task.cores)
            return n
        tr = cast(DecisionTrace, self._trace)  # used only with ``rec``: a traced pass
        masks: Sequence[tuple[str, npt.NDArray[np.bool_]]] = ()
        if self._h_place.implemented:
            n = self._place(task, view)
            if n is not None:
                n = self.node_index(n, "rpiaas_place", f"put task {task.id} on")
                self.check_room(task, n, task.cores)
                allowed = (res is None or head is None or self.respects(res, head, task, n, now)
                           or self.spare > 0)
                by = ""  # (traced) the filter that overruled the answer
                if allowed and self._h_filter.implemented:
                    # filters are constraints: a placement they exclude falls through
                    if rec is None:
                        allowed = all(bool(np.asarray(m, dtype=bool)[n])
                                      for m in self._h_filter.all(task=task, view=view))
                    else:
                        masks = tr.named_filters(task)
                        by = next((who for who, m in masks if not m[n]), "")
                        allowed = not by
                if allowed:
                    if rec is not None:
                        rec["hook"] = "place"
                        tr.filters(rec, view.fits(task), masks)
                    return n
                if rec is not None:
                    rec["place"] = {"node": self.nodes[n].name, "overruled": by or RESERVATION}
            elif not (self._h_filter.implemented or self._h_score.implemented):
                if rec is not None:
                    rec["hook"] = "place"
                    tr.filters(rec, view.fits(task), masks)
                    rec["reason"] = "no room" if not rec["candidates"] else "declined"
                return -1
            elif rec is not None:
                rec["place"] = None
        mask = view.fits(task)
        fits = mask if rec is None else mask.copy()  # (traced) the nodes with room
        if self._h_filter.implemented:
            if rec is None:
                for m in self._h_filter.all(task=task, view=view):
                    mask &= np.asarray(m, dtype=bool)
            else:
                masks = tr.named_filters(task)
                for _, m in masks:
                    mask &= m
        kept = -1  # the node kept out for a reservation (the last, in the reservation's order)
        if res is not None and head is not None and not self.spare:  # (a spare node: none kept)
            out = self.kept_out(res, head, task, now)[1]
            if out:
                if rec is not None:
                    room = mask.tolist()
                    kept = next((r for r in reversed(res.nodes or (res.node,)) if r in out and room[r]), -1)
                mask[list(out)] = False
        total: npt.NDArray[np.float64] | None = None
        score1 = self._score1
        if score1 is not None:  # one implementation: its array as is
            one = score1(task, view)
            if one is not None:
                total = np.asarray(one, dtype=np.float64)
        elif self._h_score.implemented:
            scores = self._h_score.all(task=task, view=view)
            if len(scores) == 1:  # the sum of one: its values, without np.sum's copy
                total = np.asarray(scores[0], dtype=np.float64)
            elif scores:
                total = np.sum(scores, axis=0, dtype=np.float64)
        if total is not None and total.shape != mask.shape:  # broadcast, as np.where does
            n = int(np.argmax(np.where(mask, total, -np.inf))) if mask.any() else -1
        elif total is not None:
            # the first best among the kept nodes: argmax over them alone
            idx = mask.nonzero()[0]  # np.flatnonzero of a 1-d mask, without its wrapper
            if idx.size:
                sub = total[idx]
                j = int(sub.argmax())
                n = int(idx[j])
                if sub[j] == -np.inf:  # every kept node scored -inf: as argmax over all nodes
                    n = int(np.argmax(np.where(mask, total, -np.inf)))
            else:
                n = -1
        else:
            idx = mask.nonzero()[0]  # np.flatnonzero of a 1-d mask, without its wrapper
            n = int(idx[0]) if idx.size else -1
        if rec is not None:
            tr.mask(rec, fits, masks, kept, mask, total, n)
        return n

    def forget(self) -> None:
        """A new scheduling pass begins: what :meth:`delaying` and :meth:`kept_out` found in the
        last one is stale."""
        self._freed_by = None
        self._kept = None

    def kept_out(self, res: Reservation, head: Task, task: Task, now: float) -> tuple[int, frozenset[int]]:
        """How many nodes have room for ``task`` now (-1: not counted, when it delays none), and
        those of them where starting it would delay ``head``'s reservation (:meth:`delaying`).

        Within a pass only tasks start, so the ledger is the same while it runs as many
        tasks; the answer then depends on the task only through its cores, its memory and
        whether it would end after the reservation's start on each node type, and is
        remembered for the next task that asks with the same (the queue past a blocked head
        is mostly tasks of a few sizes)."""
        view = self.view
        start_s = res.start_s
        late = tuple([now + view.estimate_s(task, n) > start_s for n in self._type_firsts])
        if not any(late):  # it ends by the start wherever it goes
            return -1, frozenset()
        key = (task.cores, task.mem_mb, late, len(self._running))
        kept = self._kept
        if kept is not None and kept[0] is res and kept[1] == key:
            return kept[2]
        room = self._free_index.with_room(task.cores, task.mem_mb)
        found = (len(room), frozenset(self.delaying(res, head, task, room, now)))
        self._kept = (res, key, found)
        return found

    def respects(self, res: Reservation, head: Task, task: Task, node: int, now: float) -> bool:
        """Whether starting ``task`` on ``node`` keeps ``head``'s reservation: the node is not one
        the reservation holds, or the task ends by the reservation's start, or the node then still
        has room for ``head`` (its free cores and memory, less the task's, plus those of its
        running tasks estimated to end by then): :meth:`delaying` of that one node."""
        if node != res.node and (not res.nodes or node not in self._holds(res)):
            return True
        if now + self.view.estimate_s(task, node) <= res.start_s:
            return True
        return not self._short(res, node, head.cores + task.cores, head.mem_mb + task.mem_mb)

    def _holds(self, res: Reservation) -> frozenset[int]:
        """The nodes ``res`` holds, as a set (a job's reservation holds up to every node)."""
        held_nodes = self._res_nodes
        if held_nodes is None or held_nodes[0] is not res:
            held_nodes = self._res_nodes = (res, frozenset(res.nodes or (res.node,)))
        return held_nodes[1]

    def delaying(self, res: Reservation, head: Task, task: Task, nodes: Iterable[int], now: float,
                 limit: int = -1) -> set[int]:
        """Those of ``nodes`` where starting ``task`` would not keep ``head``'s reservation
        (:meth:`respects` false): nodes the reservation holds, where the task is estimated to
        end after the reservation's start (its estimate asked once per node type) and the
        node would then lack room for ``head``.  With a ``limit`` of 0 or more, the search
        stops once it has found one more than ``limit`` (the caller only needs to know that
        there are more)."""
        holds = self._holds(res)
        held = [n for n in nodes if n in holds]
        out: set[int] = set()
        if not held:
            return out
        view = self.view
        start_s = res.start_s
        late: list[int]  # the held nodes where the task would end after the start
        if self._one_type:  # one node type: one estimate
            if now + view.estimate_s(task, held[0]) <= start_s:
                return out
            late = held
        else:
            names = view.type_names
            est: dict[str, float] = {}
            late = []
            for n in held:
                of_type = est.get(names[n])
                if of_type is None:
                    of_type = est[names[n]] = view.estimate_s(task, n)
                if now + of_type > start_s:
                    late.append(n)
        want_c, want_m = head.cores + task.cores, head.mem_mb + task.mem_mb
        short = self._short
        for n in late:
            if short(res, n, want_c, want_m):
                out.add(n)
                if len(out) > limit >= 0:
                    break
        return out

    def _short(self, res: Reservation, n: int, want_c: int, want_m: int) -> bool:
        """Whether node ``n`` lacks ``want_c`` cores and ``want_m`` MB (a task's and the reserved
        head's) by ``res``'s start: free now, plus what its running tasks free by then."""
        on_node = self._running_on[n]
        if not on_node:  # an idle node: nothing of its own comes free by the start
            return self._cf[n] < want_c or self._mf[n] < want_m
        freed_by = self._freed_by
        if freed_by is None or freed_by[0] is not res:
            freed_by = self._freed_by = (res, {})
        sums = freed_by[1]
        # within a pass tasks only start: a node's sum holds while it runs as many tasks
        held = sums.get(n)
        if held is None or held[0] != len(on_node):
            cores = mem = 0
            start_s = res.start_s
            for t in on_node.values():
                if t.est_end_s <= start_s:
                    cores += t.cores
                    mem += t.mem_mb
            held = sums[n] = (len(on_node), cores, mem)
        return self._cf[n] + held[1] < want_c or self._mf[n] + held[2] < want_m
