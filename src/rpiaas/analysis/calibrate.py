"""Calibrate the simulator to a testbed run: node-type parameters fitted by least squares.

For each node type, every task that completed on a node of that type gives
a pair ``(x, y)``: ``x = work_core_s / cores`` (the task's work per core in
reference-core seconds) and ``y = end_s - start_s`` (its measured runtime).
The simulator's model is ``y = start_overhead_s + x / speed``, a straight
line, fitted by least squares: the slope gives ``speed``, the intercept
``start_overhead_s`` (kept ≥ 0; with a single task size the overhead cannot
be told apart from the speed and stays 0).  A run whose tasks all slept
(``--task-kind sleep``: each lasted its modelled runtime) cannot inform that
fit, and is refused (:class:`CalibrateError`).  On a live run, ``start_s`` is the start
the agent measured: the median lag from the control plane's decision to it, over tasks
started on their arrival (the dispatch every start has), is added to ``start_overhead_s``;
the longer lag of tasks started on another task's end, and the speeds alone and while other
nodes ran tasks (nodes that share a host), are reported, not modelled.  Several runs of one
scenario are pooled into one fit, and the errors are then against their mean.

Power is fitted only from *measured* readings (``nodes.csv`` rows whose
``power_source`` is ``measured``: a meter's) of nodes that are on, at more
than one CPU utilisation: ``power_w = power_idle_w + (power_max_w -
power_idle_w) * cpu_utilization`` by least squares; the measured power while
booting gives ``power_boot_w`` and, with the boot time, the energy per boot.
A run whose power was modelled (from measured utilisation, or in simulation)
gets no power fit: the fit would return the model that made the figures.
``boot_s`` is the median of the boots the run measured (``fidelity.json``'s
``boots``, when they were measured).

A run whose scenario describes container images (``images:``) also fits each node type's
``link_mbps`` and ``pull_latency_s`` to the image pulls it measured (``tasks.csv``'s
``pull_s``): :mod:`rpiaas.analysis.linkfit`.  A container task's runtime for the speed fit is then its
run after the pull (``end_s - start_s - pull_s``).

:func:`calibrate` writes a scenario whose cluster uses custom node types
``<type>-calibrated`` (``base:`` the original, with the fitted values), and
simulates the scenario before and after to measure the errors against the run:
the mean per-task response error, makespan, mean response and energy (with the
run's energy source).  With ``check`` (another run on the same nodes, another
workload) it also simulates that run's scenario before and after with the
fitted node types: the out-of-sample error beside the in-sample one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..inputs.source import InputError, Source, load_file
from ..model import PROFILES, NodeType, PowerState
from ..rundir.fidelity import read_fidelity, relative_error
from ..rundir.reader import Run, RunFileError, load_run
from ..rundir.sources import MEASURED, sources_of
from ..workload import TaskList
from .compare import compare_tasks, same_tasks
from .linkfit import LinkFit, fit_links
from .stats import fit_line

__all__ = [
    "CalibrateError",
    "Calibration",
    "Errors",
    "TypeFit",
    "calibrate",
    "calibrated_scenario",
    "fit_node_types",
    "format_calibration",
    "power_mape",
    "uninformative",
]

SUFFIX = "-calibrated"
_MIN_POWER_SPREAD = 0.05  # utilisation range needed to fit a power line
_MIN_BOOT_SAMPLES = 2  # measured readings while booting needed for the power of a boot


class CalibrateError(ValueError):
    """A run that cannot be calibrated on; the message says which and why, in one line."""


@dataclass(frozen=True)
class TypeFit:
    """The fitted parameters of one node type (``None``: not enough data to fit)."""

    type: str
    tasks: int
    speed: float
    start_overhead_s: float
    rmse_s: float
    power_idle_w: float | None = None
    power_max_w: float | None = None
    power_samples: int = 0  # measured readings the power line was fitted to
    boot_s: float | None = None  # median of the measured boots
    boots: int = 0
    power_boot_w: float | None = None  # mean measured power while booting
    boot_samples: int = 0
    # live runs: the median start lag (decision to the agent's start) of tasks started on their
    # arrival, folded into start_overhead_s, and how much longer it is after another task's end
    # (the end's report reaching the master first), which the model does not have
    dispatch_s: float | None = None
    dispatches: int = 0
    handoff_s: float | None = None
    handoffs: int = 0
    # live runs: the speed fitted with the share of each task's runtime during which other
    # nodes ran tasks as a second variable: while none did, and while others always did (nodes
    # that share a host's CPUs, as virtual ones do, differ); printed, not modelled
    speed_alone: float | None = None
    speed_shared: float | None = None
    # runs with container images: the link fitted to the measured pulls (rpiaas.analysis.linkfit)
    link: LinkFit | None = None

    @property
    def energy_per_boot_j(self) -> float | None:
        """The measured power while booting over the measured boot time (``None`` without both)."""
        if self.power_boot_w is None or self.boot_s is None:
            return None
        return self.power_boot_w * self.boot_s


@dataclass(frozen=True)
class Errors:
    """A simulation against a run: mean absolute per-task response difference (s, ``None`` if
    their tasks differ), and the relative errors of makespan, mean response and energy."""

    response_s: float | None
    makespan_rel: float | None
    mean_response_rel: float | None
    energy_rel: float | None


@dataclass
class Calibration:
    """What :func:`calibrate` found and wrote."""

    fits: dict[str, TypeFit]
    out: Path
    error_before_s: float | None = None
    error_after_s: float | None = None
    before_run: Path | None = None
    after_run: Path | None = None
    checked: bool = True
    notes: list[str] = field(default_factory=list)  # what was not fitted, and why
    energy_source: str = ""  # where the run's energy came from
    before: Errors | None = None  # in sample
    after: Errors | None = None
    check_run: Path | None = None  # the run checked out of sample (the first, if several)
    check_runs: list[Path] = field(default_factory=list)  # all of them: the errors are against their mean
    runs: list[Path] = field(default_factory=list)  # the runs fitted (pooled), in-sample errors against their mean
    check_energy_source: str = ""
    check_before: Errors | None = None
    check_after: Errors | None = None
    # per type fitted to measured power: the mean absolute percentage error of the power model
    # against those readings, with the type's own figures and with the fitted ones
    power_mape: dict[str, tuple[float, float]] = field(default_factory=dict)


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def uninformative(run: Run) -> str | None:
    """Why ``run``'s task runtimes cannot inform a speed fit (every task slept), or ``None``."""
    live = run.record.get("live")
    if not isinstance(live, dict):
        return None
    kind = live.get("task_kind")
    if kind == "sleep":
        return ("every task slept (--task-kind sleep): a sleep lasts its modelled runtime, so the "
                "runtimes say nothing of the nodes; replay the scenario with --task-kind cpu (or scenario)")
    if kind == "scenario" and run.kind is not None and run.kind_names == ["sleep"]:
        return ("every task slept (--task-kind scenario, and every task of the scenario is of kind "
                "sleep): the runtimes say nothing of the nodes; give the scenario tasks that work")
    return None


def fit_node_types(run: Run | Sequence[Run], types: dict[str, str] | None = None) -> dict[str, TypeFit]:
    """Fit speed and start overhead of each node type in ``run``, and its power where measured
    (:func:`_fit_power`) and boot time where the run measured boots.

    ``run`` may be several runs on the same nodes: their tasks, readings and boots are pooled
    into one fit (a testbed whose speed varies from run to run, a virtual one on a shared host,
    is fitted to its mean).  ``types`` names each node's type (by node name); default: the
    first run's own.
    """
    runs = [run] if isinstance(run, Run) else list(run)
    types = runs[0].node_types if types is None else types
    xs, ys, ts, fs = [], [], [], []
    for r in runs:
        type_of_node = np.array([types.get(n, "") for n in r.node_names] or [""], dtype=object)
        ok = r.completed & np.isfinite(r.start_s) & np.isfinite(r.end_s) & (r.node >= 0)
        ok &= _worked(r) & r.single_node()  # a job over several nodes is left out of the speed fit
        ts.append(type_of_node[r.node[ok]] if ok.any() else np.zeros(0, dtype=object))
        xs.append(r.work_core_s[ok] / r.cores[ok])
        # a container task's run began after its image's pull (start_s is its placement)
        pulled = np.nan_to_num(r.pull_s[ok], nan=0.0) if r.pull_s is not None else 0.0
        ys.append(r.end_s[ok] - r.start_s[ok] - pulled)
        fs.append(_shared(r, ok))
    node_type, x_all, y_all = np.concatenate(ts), np.concatenate(xs), np.concatenate(ys)
    f_all = np.concatenate(fs)
    boots_of = _pooled_boots(runs)
    lags = _start_lags(runs, types)
    fits: dict[str, TypeFit] = {}
    for t in sorted({v for v in types.values() if v}):
        sel = node_type == t
        x, y = x_all[sel], y_all[sel]
        if not x.size:
            continue
        a, b = fit_line(x, y)
        if not (b > 0 and math.isfinite(b)):
            continue
        rmse = float(np.sqrt(np.mean((a + b * x - y) ** 2)))
        idle, peak, samples = _fit_power(runs, t, types)
        boot_s, boots = boots_of.get(t, (None, 0))
        boot_w, boot_samples = _boot_power(runs, t, types)
        on_arrival, after_end = lags.get(t, ([], []))
        dispatch = float(np.median(on_arrival)) if on_arrival else None
        handoff = float(np.median(after_end)) - (dispatch or 0.0) if after_end else None
        # rounding noise of an exact fit is no overhead
        overhead = (a if a > 1e-9 else 0.0) + max(0.0, dispatch or 0.0)
        alone, shared = _speed_by_sharing(x, y, f_all[sel])
        fits[t] = TypeFit(t, int(x.size), 1.0 / b, overhead, rmse, idle, peak, samples,
                          boot_s, boots, boot_w, boot_samples, dispatch, len(on_arrival), handoff, len(after_end),
                          alone, shared)
    return fits


_MAX_SHARED_TASKS = 20_000  # beyond: no sharing figures (a live run is far smaller)


def _shared(run: Run, ok: Any) -> Any:
    """For the tasks ``ok`` of a live run: the share of each one's runtime during which tasks ran
    on other nodes (NaN for a simulated run, or one too large to look at)."""
    idx = np.flatnonzero(ok)
    out = np.full(idx.size, np.nan)
    if not isinstance(run.record.get("live"), dict) or not 0 < idx.size <= _MAX_SHARED_TASKS:
        return out
    start, end, node = run.start_s[idx], run.end_s[idx], run.node[idx]
    for k in np.unique(node):
        mine = node == k
        # the union of the other nodes' task intervals: merged, with their cumulative length
        order = np.argsort(start[~mine], kind="stable")
        merged: list[list[float]] = []
        for s0, e0 in zip(start[~mine][order], end[~mine][order], strict=True):
            if merged and s0 <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], float(e0))
            else:
                merged.append([float(s0), float(e0)])
        if not merged:
            out[mine] = 0.0
            continue
        lo, hi = np.array([m[0] for m in merged]), np.array([m[1] for m in merged])
        cum = np.concatenate([[0.0], np.cumsum(hi - lo)])

        def covered(t: Any, lo: Any = lo, hi: Any = hi, cum: Any = cum) -> Any:
            i = np.searchsorted(lo, t, side="right")  # intervals starting at or before t
            inside = np.where(i > 0, np.minimum(t, hi[np.maximum(i - 1, 0)]) - lo[np.maximum(i - 1, 0)], 0.0)
            return cum[np.maximum(i - 1, 0)] * (i > 0) + np.maximum(inside, 0.0)

        span = end[mine] - start[mine]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[mine] = np.where(span > 0, (covered(end[mine]) - covered(start[mine])) / span, 0.0)
    return out


def _speed_by_sharing(x: Any, y: Any, f: Any) -> tuple[float | None, float | None]:
    """``y = a + b x + c x f`` by least squares, ``f`` the share of each runtime during which
    other nodes ran tasks: the speed while none did (``1 / b``) and while they always did
    (``1 / (b + c)``); ``None`` without enough tasks of each kind."""
    ok = np.isfinite(f)
    x, y, f = x[ok], y[ok], f[ok]
    if x.size < 6 or int(np.count_nonzero(f < 0.5)) < 3 or int(np.count_nonzero(f >= 0.5)) < 3 \
            or float(np.ptp(x)) <= 0:
        return None, None
    design = np.column_stack([np.ones_like(x), x, x * f])
    (_, b, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    if not (b > 0 and b + c > 0):
        return None, None
    return 1.0 / float(b), 1.0 / float(b + c)


def _start_lags(runs: Sequence[Run], types: dict[str, str]) -> dict[str, tuple[list[float], list[float]]]:
    """Each node type's start lags in the live runs among ``runs``: how long after the control
    plane's decision (``start`` in ``events.jsonl``) the task started on its agent, for tasks
    started on their arrival and for those started on another task's end."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for run in runs:
        log = run.path / "events.jsonl"
        if not isinstance(run.record.get("live"), dict) or not log.is_file():
            continue
        decided: dict[int, float] = {}
        with log.open(encoding="utf-8") as f:
            for line in f:
                e = json.loads(line) if line.strip() else {}
                if isinstance(e, dict) and e.get("act") == "start" and isinstance(e.get("t"), (int, float)):
                    decided[int(e["task"])] = float(e["t"])  # the last: a retried task's final start
        ok = run.completed & np.isfinite(run.start_s) & (run.node >= 0) & _worked(run) & run.single_node()
        for i in np.flatnonzero(ok):
            t = decided.get(int(run.task_id[i]))
            name = types.get(run.node_names[run.node[i]], "")
            if t is None or not name:
                continue
            on_arrival, after_end = out.setdefault(name, ([], []))
            (on_arrival if abs(t - float(run.arrival_s[i])) < 1e-9 else after_end).append(float(run.start_s[i]) - t)
    return out


def measured_boots(run: Run) -> dict[str, tuple[float, int]]:
    """The median measured boot time and the count of boots of each node type, from the run's
    ``fidelity.json`` (only boots it says were measured: an emulated boot is the model's)."""
    return {t: (float(np.median(v)), len(v)) for t, v in _boot_values(run).items()}


def _boot_values(run: Run) -> dict[str, list[float]]:
    """Each node type's measured boot times in ``run``'s ``fidelity.json`` (its ``values_s``; a
    file without them gives its median once per boot)."""
    doc = read_fidelity(run.path)
    boots = doc.get("boots") if doc is not None else None
    if not isinstance(boots, dict) or boots.get("source") != MEASURED:
        return {}
    out: dict[str, list[float]] = {}
    for name, row in (boots.get("types") or {}).items():
        m = row.get("measured") if isinstance(row, dict) else None
        if not (isinstance(m, dict) and m.get("count") and isinstance(m.get("median_s"), (int, float))):
            continue
        values = m.get("values_s")
        if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
            out[str(name)] = [float(v) for v in values]
        else:
            out[str(name)] = [float(m["median_s"])] * int(m["count"])
    return out


def _pooled_boots(runs: Sequence[Run]) -> dict[str, tuple[float, int]]:
    """:func:`measured_boots` over several runs: the median of all their boots."""
    pooled: dict[str, list[float]] = {}
    for r in runs:
        for t, v in _boot_values(r).items():
            pooled.setdefault(t, []).extend(v)
    return {t: (float(np.median(v)), len(v)) for t, v in pooled.items()}


def _of_type(run: Run, type_name: str, types: dict[str, str]) -> Any:
    return np.array([types.get(n) == type_name for n in run.node_names] or [False], dtype=bool)


def _boot_power(runs: Sequence[Run], type_name: str, types: dict[str, str]) -> tuple[float | None, int]:
    """The mean measured power of the type's nodes while booting, and its count of readings."""
    readings = []
    for run in runs:
        s = run.series
        if s is None or not s.node.size:
            continue
        sel = _of_type(run, type_name, types)[s.node] & s.booting & s.power_measured & np.isfinite(s.power_w)
        readings.append(s.power_w[sel])
    p = np.concatenate(readings) if readings else np.zeros(0)
    n = int(p.size)
    return (float(np.mean(p)), n) if n >= _MIN_BOOT_SAMPLES else (None, n)


def _worked(run: Run) -> Any:
    """The tasks whose runtimes the node made: in a live run of ``--task-kind scenario``,
    ``sleep`` tasks slept their modelled runtime, which says nothing of the node."""
    live = run.record.get("live")
    worked = np.ones(run.start_s.shape, dtype=bool)
    if isinstance(live, dict) and live.get("task_kind") == "scenario" and run.kind is not None \
            and "sleep" in run.kind_names:
        worked = run.kind != run.kind_names.index("sleep")
    return worked


def _power_readings(runs: Sequence[Run], type_name: str, types: dict[str, str]
                    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The CPU utilisation and *measured* power (on, ``power_source`` measured) of the type's
    nodes' readings in ``runs``."""
    us, ps = [], []
    for run in runs:
        s = run.series
        if s is None or not s.node.size:
            continue
        sel = _of_type(run, type_name, types)[s.node] & s.on & s.power_measured & np.isfinite(s.power_w) \
            & np.isfinite(s.cpu_utilization)
        us.append(s.cpu_utilization[sel])
        ps.append(s.power_w[sel])
    return (np.concatenate(us), np.concatenate(ps)) if us else (np.zeros(0), np.zeros(0))


def _fit_power(runs: Sequence[Run], type_name: str, types: dict[str, str]
               ) -> tuple[float | None, float | None, int]:
    """Idle and maximum watts of the type by least squares of its nodes' *measured* power (on,
    ``power_source`` measured) against their measured CPU utilisation."""
    u, p = _power_readings(runs, type_name, types)
    if u.size < 3 or float(np.ptp(u)) < _MIN_POWER_SPREAD:
        return None, None, int(u.size)
    design = np.column_stack([np.ones_like(u), u])
    (idle, slope), *_ = np.linalg.lstsq(design, p, rcond=None)
    idle = max(0.0, float(idle))
    return idle, max(idle, idle + float(slope)), int(u.size)


# ---------------------------------------------------------------- scenarios
def _scenario_data(run: Run, scenario: str | Path | None) -> tuple[dict[str, Any], Path]:
    """The scenario as a dict with its cluster inline, and the directory it is relative to."""
    data: dict[str, Any]
    if scenario is not None:
        src = load_file(scenario)
        if not isinstance(src.data, dict):
            raise InputError("expected a scenario mapping", str(scenario))
        data, base = copy.deepcopy(src.data), src.base
    else:
        recorded = run.record.get("scenario")
        if not isinstance(recorded, dict):
            raise RunFileError(f"{run.path / 'run.json'}: no 'scenario' object (give --scenario)")
        data = copy.deepcopy(recorded)
        file = run.record.get("scenario_file")
        base = Path(file).parent if isinstance(file, str) and file else run.path
    cluster = data.get("cluster")
    if isinstance(cluster, str):
        if not (base / cluster).is_file():
            raise InputError(f"no such cluster file (the scenario's cluster: {cluster}); run from "
                             "where the run was made, or give --scenario", str(base / cluster))
        src = load_file(base / cluster)
        if not isinstance(src.data, dict):
            raise InputError("expected a cluster mapping", str(base / cluster))
        data["cluster"] = copy.deepcopy(src.data)
    return data, base


def calibrated_scenario(data: dict[str, Any], fits: dict[str, TypeFit], origin: str) -> dict[str, Any]:
    """``data`` (a scenario with its cluster inline) with node types replaced by fitted ones."""
    out = copy.deepcopy(data)
    cluster = out["cluster"]
    if not isinstance(cluster, dict):
        raise InputError("expected a cluster mapping", "cluster")
    node_types = dict(cluster.get("node_types") or {})
    renamed: dict[str, str] = {}
    for t, fit in fits.items():
        spec: dict[str, Any] = dict(node_types[t]) if isinstance(node_types.get(t), dict) else {}
        if not spec:
            if t not in PROFILES:
                continue  # neither built in nor defined here: nothing to base it on
            spec = {"base": t}
        spec["speed"] = _r(fit.speed)
        spec["start_overhead_s"] = _r(fit.start_overhead_s)
        what = [f"{fit.tasks} tasks; runtime rmse {fit.rmse_s:.3g} s"]
        if fit.dispatch_s is not None:
            what.append(f"start overhead with a dispatch of {fit.dispatch_s:.3g} s")
        if fit.power_idle_w is not None and fit.power_max_w is not None:
            spec["power_idle_w"] = _r(fit.power_idle_w)
            spec["power_max_w"] = _r(fit.power_max_w)
            what.append(f"power from {fit.power_samples} measured readings")
        if fit.boot_s is not None:
            spec["boot_s"] = _r(fit.boot_s)
            what.append(f"boot_s the median of {fit.boots} measured boots")
        if fit.power_boot_w is not None:
            spec["power_boot_w"] = _r(fit.power_boot_w)
        if fit.link is not None:
            spec["link_mbps"] = _r(fit.link.link_mbps)
            spec["pull_latency_s"] = _r(fit.link.latency_s)
            what.append(f"link_mbps and pull_latency_s from {fit.link.pulls} measured image pulls")
        spec["source"] = f"fitted by rpiaas calibrate to {origin} ({'; '.join(what)})"
        name = t + SUFFIX
        node_types[name] = spec
        renamed[t] = name
    cluster["node_types"] = node_types
    for group in cluster.get("clusters") or []:
        if not isinstance(group, dict):
            continue
        if group.get("type") in renamed:
            group["type"] = renamed[group["type"]]
        for node in group.get("nodes") or []:
            if isinstance(node, dict) and node.get("type") in renamed:
                node["type"] = renamed[node["type"]]
    return out


def _build(data: dict[str, Any], file: str, base: Path) -> Any:
    from ..scenario import parse_scenario

    return parse_scenario(Source(copy.deepcopy(data), {}, file, base=base))


def _rel(sim: Any, run: Any) -> float | None:
    if isinstance(sim, (int, float)) and isinstance(run, (int, float)):
        return relative_error(float(sim), float(run))
    return None


def _errors(lives: Sequence[Run], sim_dir: Path) -> Errors:
    """A simulated run against ``lives`` (one run, or several of one scenario: their mean):
    :class:`Errors`.  The per-task response error is the mean over the runs of each one's."""
    sim = load_run(sim_dir, series=False)
    per_task = [compare_tasks(live, sim)["response_diff_s"]["mean_abs"]
                for live in lives if same_tasks(live, sim) is None]
    mean_abs = float(np.mean(per_task)) if len(per_task) == len(lives) else None
    b = sim.record["summary"]

    def rel(key: str) -> float | None:
        vals = [live.record["summary"].get(key) for live in lives]
        if not all(isinstance(v, (int, float)) for v in vals):
            return None
        return _rel(b.get(key), float(np.mean(vals)))

    return Errors(mean_abs, rel("makespan_s"), rel("mean_response_s"), rel("energy_j"))


def power_mape(run: Run | Sequence[Run], fits: dict[str, TypeFit], node_types: dict[str, NodeType],
               types: dict[str, str]) -> dict[str, tuple[float, float]]:
    """For each type whose power was fitted: the mean absolute percentage error of the power
    model against the measured readings it was fitted to (of ``run``, or of several runs
    pooled), with the type's own figures and with the fitted ones (both through
    :meth:`NodeType.power_w <rpiaas.model.NodeType.power_w>`)."""
    runs = [run] if isinstance(run, Run) else list(run)
    out: dict[str, tuple[float, float]] = {}
    on = int(PowerState.ON)
    for t, fit in fits.items():
        base = node_types.get(t)
        if base is None or fit.power_idle_w is None or fit.power_max_w is None:
            continue
        fitted = dataclasses.replace(base, power_idle_w=fit.power_idle_w, power_max_w=fit.power_max_w)
        u, p = _power_readings(runs, t, types)
        u, p = u[p > 0], p[p > 0]
        if not u.size:
            continue
        errs = [float(np.mean(np.abs(np.array([m.power_w(on, float(x)) for x in u]) - p) / p)) for m in (base, fitted)]
        out[t] = (errs[0], errs[1])
    return out


def _notes(run: Run, fits: dict[str, TypeFit]) -> list[str]:
    """One line for each thing not fitted: power without measured readings, parallel jobs."""
    out = []
    jobs = len(run.parts())
    if jobs:
        out.append(f"speed: {jobs:,} parallel jobs over several nodes left out of the fit (a job's runtime "
                   "is set by its slowest part, not by one node type)")
    if not any(f.power_idle_w is not None for f in fits.values()):
        s = run.series
        source = sources_of(run.record)["power_w"]
        if s is None or not bool(np.any(s.power_measured)):
            how = {"modelled": "modelled (a simulation)",
                   "modelled-from-measured": "modelled from measured CPU utilisation (the node type's "
                   "power model, no meter)"}.get(source, source)
            out.append(f"power: not fitted: the run's power was {how}, never measured; a fit would "
                       "return the model that made it")
        else:
            out.append("power: not fitted: too few measured readings of a node that is on, or too "
                       f"little spread in its CPU utilisation (at least 3 readings over {_MIN_POWER_SPREAD:g})")
    return out


PathLike = str | Path


def _paths(arg: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [arg] if isinstance(arg, (str, Path)) else list(arg)


def _load_all(paths: Sequence[PathLike], what: str) -> list[Run]:
    """Load ``paths`` (runs of one scenario: the same tasks), refusing a run whose tasks
    cannot inform a fit, or one whose tasks differ from the first's."""
    runs = [load_run(p) for p in paths]
    for r in runs:
        if (why := uninformative(r)) is not None:
            raise CalibrateError(f"{r.path}: {why}")
    for r in runs[1:]:
        if (why := same_tasks(runs[0], r)) is not None:
            raise CalibrateError(f"{r.path}: {what} are runs of one scenario, and its tasks are not "
                                 f"those of {runs[0].path} ({why})")
    return runs


def calibrate(live_run: PathLike | Sequence[PathLike], out: str | Path, scenario: str | Path | None = None,
              simulate_check: bool = True, keep_runs: str | Path | None = None,
              check: PathLike | Sequence[PathLike] | None = None) -> Calibration:
    """Fit the node types of ``scenario`` (default: the run's own) to ``live_run``; write ``out``.

    ``live_run`` may be several runs of one scenario (the same tasks): their tasks are pooled
    into one fit, and the errors in sample are against their mean.  With ``simulate_check``,
    simulate the scenario before and after calibration and measure each one's errors against
    the run (run directories under ``keep_runs`` if given, else discarded).  With ``check``
    (another run on the same nodes: another workload; or several runs of it, whose mean it is
    then judged against), simulate its scenario before and after too, with the fitted node
    types: the errors out of sample.

    :raises CalibrateError: the run's tasks cannot inform a fit (every task slept), or runs
        given together are not of one scenario.
    """
    lives = _load_all(_paths(live_run), "the runs fitted together")
    others = _load_all(_paths(check), "the runs checked together") if check is not None else []
    live = lives[0]
    origin = ", ".join(str(r.path) for r in lives)
    data, base = _scenario_data(live, scenario)
    # the types to fit are the scenario's: a node is of the type it is given there
    types = None
    if scenario is not None:
        given = {n.name: n.type.name for n in _build(data, str(scenario), base).cluster.nodes}
        types = {name: given.get(name, "") for name in live.node_names}
    fits = fit_node_types(lives, types)
    built = _build(data, str(scenario or live.path), base)
    if built.images and isinstance(built.workload, TaskList):
        links = fit_links(lives, {t.id: t for t in built.workload.items}, built.images, types or live.node_types)
        fits = {t: dataclasses.replace(f, link=links.get(t)) for t, f in fits.items()}
    if not fits:
        raise RunFileError(f"{live.path / 'tasks.csv'}: no completed task on a known node type "
                           "to fit (node types come from run.json 'nodes', or the scenario given)")
    node_types = {n.type.name: n.type for n in built.cluster.nodes}
    new = calibrated_scenario(data, fits, origin)
    out_path = Path(out)
    _build(new, str(out_path), base)  # check it before writing it
    out_path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"# Calibrated by `rpiaas calibrate {' '.join(str(r.path) for r in lives)}`: node types fitted\n"
            "# to that run (speed and start_overhead_s by least squares on task runtimes; power and\n"
            "# boots only where the run measured them).\n")
    out_path.write_text(head + yaml.safe_dump(new, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
    result = Calibration(fits, out_path, notes=_notes(live, fits),
                         energy_source=sources_of(live.record)["energy_j"],
                         power_mape=power_mape(lives, fits, node_types, types or live.node_types),
                         runs=[r.path for r in lives])
    if not simulate_check:
        result.checked = False
        return result
    from ..sim import simulate

    with tempfile.TemporaryDirectory(prefix="rpiaas-calibrate-") as tmp:
        runs = Path(keep_runs) if keep_runs is not None else Path(tmp)
        before, after = runs / "before", runs / "after"
        simulate(_build(data, str(out_path), base), before)
        simulate(_build(new, str(out_path), base), after)
        result.before, result.after = _errors(lives, before), _errors(lives, after)
        result.error_before_s, result.error_after_s = result.before.response_s, result.after.response_s
        if keep_runs is not None:
            result.before_run, result.after_run = before, after
        if others:
            other = others[0]
            other_data, other_base = _scenario_data(other, None)
            other_new = calibrated_scenario(other_data, fits, origin)
            simulate(_build(other_data, str(other.path), other_base), runs / "check-before")
            simulate(_build(other_new, str(other.path), other_base), runs / "check-after")
            result.check_run = other.path
            result.check_runs = [r.path for r in others]
            result.check_energy_source = sources_of(other.record)["energy_j"]
            result.check_before = _errors(others, runs / "check-before")
            result.check_after = _errors(others, runs / "check-after")
    return result


def format_calibration(result: Calibration) -> str:
    """The fitted parameters and the errors before and after, as terminal lines."""
    lines = []
    for t, f in result.fits.items():
        base = PROFILES.get(t)
        was = f" (was {base.speed:g})" if base is not None else ""
        power = ""
        if f.power_idle_w is not None and f.power_max_w is not None:
            power = (f", power {f.power_idle_w:.3g}–{f.power_max_w:.3g} W ({f.power_samples} measured "
                     "readings)")
        boot = ""
        if f.boot_s is not None:
            boot = f", boot {f.boot_s:.3g} s (median of {f.boots} measured boots"
            boot += f", was {base.boot_s:g} s)" if base is not None else ")"
        if f.energy_per_boot_j is not None:
            boot += f", {f.energy_per_boot_j:.3g} J per boot ({f.power_boot_w:.3g} W measured while booting)"
        lines.append(f"{t}: {f.tasks} tasks, speed {f.speed:.4g}{was}, start overhead "
                     f"{f.start_overhead_s:.4g} s, runtime rmse {f.rmse_s:.3g} s{power}{boot}")
        if f.dispatch_s is not None or f.handoff_s is not None:
            lines.append(f"{t}: " + _lag_line(f))
        if f.speed_alone is not None and f.speed_shared is not None:
            lines.append(f"{t}: " + _sharing_line(f))
        if f.link is not None:
            lines.append(f"{t}: " + _link_line(f.link, base))
    lines += result.notes
    for t, (before, after) in result.power_mape.items():
        lines.append(f"{t}: power model against the measured readings: MAPE {before * 100:.2f} % with the type's "
                     f"figures, {after * 100:.2f} % fitted")
    b, a = result.error_before_s, result.error_after_s
    if not result.checked:
        pass
    elif b is not None and a is not None:
        change = f" ({(a - b) / b * 100:+.1f} %)" if b > 0 else ""
        against = "the run" if len(result.runs) <= 1 else f"the {len(result.runs)} runs (the mean of each one's)"
        lines.append(f"mean response error per task against {against}: before {b:.4g} s, "
                     f"after {a:.4g} s{change}")
    else:
        lines.append("mean response error: not measured (the simulated runs do not have the "
                     "run's tasks; is this the run's scenario?)")
    if result.checked and result.before is not None and result.after is not None:
        lines += _error_table(result)
    if result.before_run is not None:
        lines.append(f"simulated runs: {result.before_run} (before), {result.after_run} (after)")
    lines.append(f"calibrated scenario: {result.out}")
    return "\n".join(lines)


def _link_line(link: LinkFit, base: NodeType | None) -> str:
    was = f" (was {base.link_mbps:g})" if base is not None else ""
    was_latency = f" (was {base.pull_latency_s:g} s)" if base is not None else ""
    return (f"link {link.link_mbps:.4g} Mbit/s{was} from {link.pulls} measured image pulls "
            f"({link.bursts} bursts, {link.mb:.4g} MB), pull rmse {link.rmse_s:.3g} s; pull latency "
            f"{link.latency_s:.3g} s{was_latency}, the fixed part of each pull")


def _sharing_line(f: TypeFit) -> str:
    assert f.speed_alone is not None and f.speed_shared is not None
    return (f"speed {f.speed_alone:.4g} while no other node ran a task, {f.speed_shared:.4g} while others did "
            "(nodes that share a host's CPUs slow each other down; the model has one speed)")


def _lag_line(f: TypeFit) -> str:
    parts = []
    if f.dispatch_s is not None:
        parts.append(f"dispatch {f.dispatch_s:.3g} s from decision to the agent's start (median of {f.dispatches} "
                     "tasks started on arrival; in the start overhead)")
    if f.handoff_s is not None:
        parts.append(f"{f.handoff_s:.3g} s more for a task started on another's end (median of {f.handoffs}; "
                     "the end's report reaching the master: not in the model, it lengthens queued tasks' waits)")
    return ", ".join(parts)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g} s"


def _error_table(result: Calibration) -> list[str]:
    """The simulation's errors against the run (in sample) and, with ``check``, against the
    other run (out of sample), before and after the fit."""
    assert result.before is not None and result.after is not None
    cols = [("in sample", result.before, result.after, result.energy_source)]
    if result.check_before is not None and result.check_after is not None:
        cols.append(("out of sample", result.check_before, result.check_after, result.check_energy_source))
    head = ["error of the simulation"] + [f"{name} {when}" for name, *_ in cols for when in ("before", "after")]
    rows = [head,
            ["mean response error per task"] + [_secs(e.response_s) for _, b, a, _ in cols for e in (b, a)],
            ["makespan"] + [_pct(e.makespan_rel) for _, b, a, _ in cols for e in (b, a)],
            ["mean response"] + [_pct(e.mean_response_rel) for _, b, a, _ in cols for e in (b, a)],
            ["energy"] + [_pct(e.energy_rel) for _, b, a, _ in cols for e in (b, a)]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
           .rstrip() for r in rows]
    sources = [f"{name}: the run's energy is {src}" + (" (the simulation's is modelled: modelled on both "
                                                        "sides, the error says nothing of the testbed)"
                                                        if src != MEASURED else "")
               for name, _, _, src in cols]
    if len(result.runs) > 1:
        sources.append(f"in sample: fitted on {len(result.runs)} runs pooled, the errors against their mean")
    if result.check_run is not None:
        checked = result.check_runs or [result.check_run]
        fitted = "the runs" if len(result.runs) > 1 else "the run"
        sources.append(f"out of sample: fitted on {fitted}, checked on {', '.join(map(str, checked))}"
                       + (" (against their mean)" if len(checked) > 1 else ""))
    return out + sources
