"""The decision trace: what the control plane writes to ``decisions.jsonl``.

One JSON line per placement decision, admission rejection and rebalance
action: which hooks answered, which nodes they filtered out, how the
feasible nodes scored and which node was chosen.  The format is documented
in ``docs/scenario.md`` ("Decision trace").  A :class:`DecisionTrace` builds
and writes the records; :class:`~rpiaas.core.control.ControlPlane` owns one when
tracing and decides when a record is written.  Tracing calls the same hooks
in the same order as an untraced pass, so it cannot change a decision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pluggy

from ..model import Node, Task
from ..policy.base import SKIP, Reservation

if TYPE_CHECKING:
    from ..policy.plugins import HookCall
    from .view import ClusterView


class TextSink(Protocol):
    """Where a log goes: anything with ``write(str)`` (a text file, a list sink)."""

    def write(self, text: str, /) -> Any: ...

__all__ = ["RESERVATION", "TRACE_KEYS", "TRACE_TOP_K", "DecisionTrace", "TextSink", "named_impls",
           "num"]

TRACE_TOP_K = 16
"""Most nodes named per list of a decision-trace record (filtered nodes, scores)."""
# the fixed key order of decision-trace records (keys a record lacks are left out)
TRACE_KEYS = ("t", "decision", "task", "hook", "chosen", "nodes", "reason", "from", "candidates", "feasible",
              "place", "filtered", "scores", "blocked", "reservation", "utilization")
RESERVATION = "(reservation)"  # who filtered a node out to keep a reservation


class DecisionTrace:
    """Builds and writes the decision-trace records of one run.

    :param nodes: the cluster's nodes, in index order.
    :param view: what the policies see (the trace records what they saw).
    :param sink: where the lines go (``decisions.jsonl``).
    :param filter_hook: the control plane's filter hook call.
    :param filter_impls: the filter hook's implementations with their policies' names
        (:func:`named_impls`).
    """

    def __init__(self, nodes: tuple[Node, ...], view: ClusterView, sink: TextSink,
                 filter_hook: HookCall,
                 filter_impls: list[tuple[str, Callable[..., Any], tuple[str, ...]]] | None) -> None:
        self.nodes = nodes
        self.view = view
        self._sink = sink
        self._h_filter = filter_hook
        self._filter_impls = filter_impls
        self._index = {n.name: i for i, n in enumerate(nodes)}

    def named_filters(self, task: Task) -> list[tuple[str, npt.NDArray[np.bool_]]]:
        """The filter hook's answers with who gave them: the calls ``HookCall.all`` makes."""
        impls = self._filter_impls
        if impls is None:  # wrappers: pluggy calls them, answers are named by position
            return [(f"rpiaas_filter#{i}", np.asarray(m, dtype=bool))
                    for i, m in enumerate(self._h_filter.all(task=task, view=self.view))]
        args = {"task": task, "view": self.view}
        out = []
        for who, func, names in impls:
            m = func(*[args[a] for a in names])
            if m is not None:
                out.append((who, np.asarray(m, dtype=bool)))
        return out

    def _some(self, idx: npt.NDArray[np.intp]) -> dict[str, Any]:
        """Nodes by name, at most ``TRACE_TOP_K`` of them (index order), and how many."""
        return {"count": int(idx.size), "nodes": [self.nodes[i].name for i in idx[:TRACE_TOP_K].tolist()]}

    def filters(self, rec: dict[str, Any], fits: npt.NDArray[np.bool_],
                       masks: Sequence[tuple[str, npt.NDArray[np.bool_]]]) -> None:
        rec["candidates"] = int(fits.sum())
        filtered = {who: self._some(np.flatnonzero(fits & ~m))
                    for who, m in masks if m.shape == fits.shape and (fits & ~m).any()}
        if filtered:
            rec["filtered"] = filtered

    def mask(self, rec: dict[str, Any], fits: npt.NDArray[np.bool_],
                    masks: Sequence[tuple[str, npt.NDArray[np.bool_]]], kept: int,
                    mask: npt.NDArray[np.bool_], total: npt.NDArray[np.float64] | None, n: int) -> None:
        """Fill a record for a choice made by filters, scores, or first fit."""
        rec["hook"] = "+".join(h for h, on in (("filter", masks), ("score", total is not None)) if on) or "default"
        self.filters(rec, fits, masks)
        if kept >= 0:
            rec.setdefault("filtered", {})[RESERVATION] = self._some(np.array([kept], dtype=np.intp))
        feasible = np.flatnonzero(mask)
        rec["feasible"] = int(feasible.size)
        if total is not None and feasible.size:
            # the best first, ties to the lowest index (as the choice); NaN ranks first, as in argmax
            vals = total[feasible]
            order = np.lexsort((feasible, np.where(np.isnan(vals), -np.inf, -vals)))
            top = feasible[order[:TRACE_TOP_K]].tolist()
            if n >= 0 and n not in top:
                top.append(n)
            rec["scores"] = {self.nodes[i].name: num(float(total[i])) for i in top}
        if n < 0:
            rec["reason"] = "no room" if not rec["candidates"] else "reservation" if kept >= 0 else "filtered"

    def placed(self, rec: dict[str, Any], node: int) -> None:
        rec["chosen"] = self.nodes[node].name
        self.emit(rec)

    def blocked(self, rec: dict[str, Any], answer: Any, reservation: Reservation | None) -> None:
        """Write the record of a task that found no node, with what ``rpiaas_blocked`` made of it."""
        rec["chosen"] = None
        if answer is None:
            rec["blocked"] = "wait"
        elif answer is SKIP:
            rec["blocked"] = "skip"
        elif reservation is not None:
            rec["blocked"] = "reserve_ignored"
        else:
            rec["blocked"] = "reserve"
            rec["reservation"] = {"node": self.name(answer.node), "start_s": num(float(answer.start_s))}
            if answer.nodes:  # kept for a parallel job: all its nodes
                rec["reservation"]["nodes"] = [self.name(n) for n in answer.nodes]
        self.emit(rec)

    def _trace_utilization(self, rec: dict[str, Any]) -> None:
        """Live: the measured utilisation the policy saw, of the chosen node and the scored ones
        (in simulation it is the reserved share of the cores, which the trace already implies)."""
        names = [rec["chosen"]] if isinstance(rec.get("chosen"), str) else []
        names += [n for n in rec.get("scores", ()) if n not in names]
        if names:
            index = self._index
            util = self.view.utilization
            rec["utilization"] = {n: round(float(util[index[n]]), 4) for n in names}

    def name(self, n: int) -> str | int:
        """A node's name; an index that names no node as it is (the trace must not fail)."""
        return self.nodes[n].name if 0 <= n < len(self.nodes) else n

    def emit(self, rec: dict[str, Any]) -> None:
        """Write one record, its keys in the documented order."""
        if self.view.utilization_measured:
            self._trace_utilization(rec)
        out = {k: rec[k] for k in TRACE_KEYS if k in rec}
        self._sink.write(json.dumps(out, separators=(",", ":")) + "\n")


def num(x: float) -> float | str:
    """A float for JSON: itself when finite, else ``"inf"``, ``"-inf"`` or ``"nan"`` (JSON has none)."""
    return x if math.isfinite(x) else repr(x)


def named_impls(pm: pluggy.PluginManager, hook: str) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]] | None:
    """A hook's implementations as :class:`~rpiaas.policy.plugins.HookCall` calls them, each with its
    policy's name (``NAME``, else the class name; ``#2``, ``#3`` ... for repeats).

    ``None`` when one is a wrapper: then only pluggy can call them.
    """
    impls = getattr(pm.hook, hook).get_hookimpls()
    if any(i.hookwrapper or i.wrapper for i in impls):
        return None
    out = []
    seen: dict[str, int] = {}
    for impl in reversed(impls):  # pluggy calls the last registered first
        name = getattr(impl.plugin, "NAME", "") or type(impl.plugin).__name__
        seen[name] = seen.get(name, 0) + 1
        who = name if seen[name] == 1 else f"{name}#{seen[name]}"
        out.append((who, impl.function, tuple(impl.argnames)))
    return out
