"""A run's summary metrics and its ``run.json`` record.

:class:`Stats` accumulates the summary as tasks end (the simulator and the
live shell feed it through the writer); :func:`run_record` is the content of
``run.json``; :func:`bounded_slowdown` is the per-task metric of
``tasks.csv`` and of the summary.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.control import RUN_FIGURES
from ..inputs.power import without_credentials
from ..model import Node, Task, TaskState
from .format import FORMAT
from .sources import MODELLED, combine, sim_sources
from .stream import BSLD_BOUND_S, Totals

if TYPE_CHECKING:
    from ..scenario import Scenario

__all__ = ["BSLD_BOUND_S", "RunNote", "Stats", "bounded_slowdown", "checkout_commit", "flat_summary", "rounded",
           "run_record", "versions"]

_COMPLETED = TaskState.COMPLETED


def versions(policies: Sequence[str] = ()) -> dict[str, Any]:
    """The versions of Python and of the packages a run's result depends on; with the names of
    the run's ``policies``, where each comes from (``builtin`` or its distribution) and its
    version; and the commit of the rpiaas checkout when run from one."""
    from ..policy.plugins import UnknownPolicyError, distribution_version, get_policy

    out: dict[str, Any] = {"python": ".".join(map(str, sys.version_info[:3]))}
    for pkg in ("rpiaas", "numpy", "simpy", "pluggy"):
        out[pkg] = distribution_version(pkg) or "unknown"
    if policies:
        found: dict[str, Any] = {}
        for name in policies:
            try:
                info = get_policy(name, broken={})  # a built-in's name: no entry point loaded
            except UnknownPolicyError:
                found[name] = {"origin": "unknown", "version": ""}
            else:
                found[name] = {"origin": info.origin, "version": info.version}
        out["policies"] = found
    commit = checkout_commit()
    if commit is not None:
        out["rpiaas_commit"] = commit
    return out


@functools.lru_cache(maxsize=1)
def checkout_commit() -> str | None:
    """The commit of the git checkout this rpiaas runs from (its ``HEAD``), or ``None`` for an
    installed copy.  Read from ``.git`` itself, not by running git: a run's own CPU time is not
    spent on it."""
    here = Path(__file__).resolve()
    git = next((p / ".git" for p in list(here.parents)[:4] if (p / ".git").exists()), None)
    if git is None:
        return None
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            git = (git.parent / git.read_text(encoding="utf-8").split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head or None  # a detached HEAD is the commit itself
        ref = head[5:]
        common = git
        if (git / "commondir").is_file():  # a worktree keeps its refs in the main repository
            common = (git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text(encoding="utf-8").strip() or None
        for line in (common / "packed-refs").read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError, ValueError):
        return None
    return None


class RunNote(UserWarning):
    """Something a run did not do, said as it ends (and kept in ``run.json`` ``notes``): a
    fault or a wake-up after the run's end, tasks that had not arrived by the horizon."""


def run_record(scenario: Scenario, mode: str, summary: dict[str, Any],
               nodes: list[dict[str, Any]], sources: dict[str, str] | None = None,
               notes: list[str] | None = None) -> dict[str, Any]:
    """The content of ``run.json`` (no wall-clock data: same inputs, same bytes); ``sources``
    (:mod:`.sources`) defaults to a simulation's; ``notes``: what the run did not apply."""
    record = {
        "format": FORMAT,
        "mode": mode,
        "name": scenario.name,
        "policy": scenario.policy.name,
        "policy_params": scenario.policy.params,
        "queue": scenario.queue.name if scenario.queue else "fcfs",
        "seed": scenario.seed,
        "scenario_file": scenario.file,
        "scenario": without_credentials(scenario.data),  # a community or a password stays out
        "versions": versions([scenario.policy.name, *([scenario.queue.name] if scenario.queue else [])]),
        "summary": summary,
        "sources": sources if sources is not None else sim_sources(),
        "nodes": nodes,
        "notes": list(notes or ()),
    }
    report = getattr(scenario.workload, "report", None)  # a bound trace's: what its options changed
    if report is not None:
        record["trace"] = {"read": report.read, "kept": report.kept,
                           "changed": {reason: report.counts[reason] for reason in sorted(report.counts)}}
    return record


def bounded_slowdown(response_s: float, run_s: float) -> float:
    """``max(1, response / max(run, 10 s))``: slowdown that short tasks cannot inflate."""
    return max(1.0, response_s / max(run_s, BSLD_BOUND_S))


class Stats(Totals):
    """Summary metrics accumulated as tasks end (in memory that does not grow with the run)."""

    node_cores: Sequence[int] = ()  # each node's cores (:meth:`set_nodes`), for its type's utilisation

    def set_nodes(self, nodes: Sequence[Node]) -> None:
        """The run's nodes (index order): the summary breaks its figures down by their types
        (``by_node_type``)."""
        self.set_groups([n.type.name for n in nodes])
        self.node_cores = [n.type.cores for n in nodes]

    def add(self, task: Task) -> float | None:
        """Account a task that ended; returns its bounded slowdown if it completed."""
        self.counts[task.state.value] += 1
        a = task.arrival_s
        if a < self.first_arrival:
            self.first_arrival = a
        started = task.start_s >= 0
        if started:
            self.waits.append(task.start_s - a)
        done = task.state is _COMPLETED
        if self.node_group:
            self.add_to_group(task.node, task.start_s - a if started else None,
                              task.end_s - a if done else None)
        if done:
            return self.completed(a, task.start_s, task.end_s)
        return None

    def completed(self, arrival_s: float, start_s: float, end_s: float) -> float:
        """Account a completed task; returns its bounded slowdown."""
        response = end_s - arrival_s
        run = end_s - start_s
        bsld = bounded_slowdown(response, run)
        self.sum_response += response
        self.sum_bsld += bsld
        if end_s > self.last_end:
            self.last_end = end_s
        return bsld

    def summary(self, busy_core_s: float, capacity_core_s: float, energy_j: float,
                duration_s: float, cpu_core_s: float | None = None,
                power: Mapping[str, Any] | None = None, run_figures: Mapping[str, int] | None = None,
                nodes: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The ``summary`` object of ``run.json``: ``mean_utilization`` is the allocated share of
        the cores (``busy_core_s``), ``mean_cpu_utilization`` the CPU share (``cpu_core_s``,
        measured live; the allocated one when not given); ``power`` the energy integrator's
        counts (:meth:`~rpiaas.core.energy.NodeUsage.power_figures`); ``run_figures`` the
        control plane's counts of faults, retries, kills and power-ons
        (:meth:`~rpiaas.core.control.ControlPlane.run_figures`); ``nodes`` ``run.json``'s
        ``nodes`` list (each node's ``busy_core_s`` and ``energy_j``), which, with
        :meth:`set_nodes`, gives ``by_node_type``."""
        counts = self.counts
        done = counts["completed"]
        waits = self.wait_figures()
        cpu = busy_core_s if cpu_core_s is None else cpu_core_s
        makespan = self.last_end - self.first_arrival if done else 0.0
        return {
            "tasks": sum(counts.values()),
            "completed": done,
            "rejected": counts["rejected"],
            "failed": counts["failed"],
            "killed": counts["killed"],
            "unfinished": counts["queued"] + counts["running"],
            "makespan_s": _r(makespan),
            "duration_s": _r(duration_s),
            "mean_wait_s": _r(waits[0]) if waits else None,
            "p95_wait_s": _r(waits[1]) if waits else None,
            "max_wait_s": _r(waits[2]) if waits else None,
            "mean_response_s": _r(self.sum_response / done) if done else None,
            "mean_bounded_slowdown": _r(self.sum_bsld / done) if done else None,
            "mean_utilization": _share(busy_core_s, capacity_core_s),
            "mean_cpu_utilization": _share(cpu, capacity_core_s),
            "energy_j": _r(energy_j),
            "mean_power_w": _r(energy_j / duration_s) if duration_s > 0 else None,
            "energy_per_task_j": _r(energy_j / done) if done else None,
            **(dict(power) if power is not None else
               {"power_cycles": 0, "boots": 0, "boot_s_median": None, "time_off_s": 0.0}),
            **{key: int(run_figures.get(key, 0)) if run_figures is not None else 0 for key in RUN_FIGURES},
            "by_node_type": self.by_node_type(nodes, duration_s) if nodes is not None and self.node_group
            else {},
        }

    def by_node_type(self, nodes: Sequence[Mapping[str, Any]], duration_s: float) -> dict[str, dict[str, Any]]:
        """The summary's ``by_node_type``: per node type (in the order the cluster first names
        them), its ``nodes``, the ``tasks`` whose row names one of them (a job's, its first
        node), ``completed``, ``mean_wait_s``, ``mean_response_s``, ``mean_utilization``
        (allocated share of its cores) and ``energy_j`` (from ``nodes``, run.json's list)."""
        groups = self.group_figures()
        out: dict[str, dict[str, Any]] = {}
        for g, name in enumerate(self.group_names):
            mine = [i for i, grp in enumerate(self.node_group) if grp == g]
            capacity = float(sum(self.node_cores[i] for i in mine)) * duration_s
            busy = sum(float(nodes[i]["busy_core_s"]) for i in mine)
            fig = groups[name]
            out[name] = {"nodes": len(mine), "tasks": fig["tasks"], "completed": fig["completed"],
                         "mean_wait_s": _opt(fig["mean_wait_s"]),
                         "mean_response_s": _opt(fig["mean_response_s"]),
                         "mean_utilization": _share(busy, capacity),
                         "energy_j": _r(sum(float(nodes[i]["energy_j"]) for i in mine)),
                         "energy_source": combine(str(nodes[i].get("energy_source", MODELLED)) for i in mine)}
        return out


def flat_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` with its nested figures (``by_node_type``) as dotted keys of their own
    (``by_node_type.rpi4b.mean_wait_s``): one column or row each, for tables and comparisons."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in flat_summary(value).items()})
        else:
            out[key] = value
    return out


def rounded(figures: Mapping[str, Any]) -> dict[str, Any]:
    """More summary figures (a workflow's, :meth:`ControlPlane.workflow_figures
    <rpiaas.core.control.ControlPlane.workflow_figures>`), their numbers rounded as the summary's."""
    return {k: _r(v) if isinstance(v, float) else v for k, v in figures.items()}


def _share(part: float, whole: float) -> float:
    """``part / whole`` rounded (a utilisation: busy core-seconds of the capacity), 0 without any."""
    return _r(part / whole) if whole > 0 else 0.0


def _opt(x: float | None) -> float | None:
    return _r(x) if x is not None else None


def _r(x: float) -> float:
    """Round summary figures so they print stably (12 significant digits)."""
    return float(f"{x:.12g}")
