"""A node type's parameters fitted to what testbed runs measured (what :func:`calibrate
<rpiaas.analysis.calibrate.calibrate>` writes into a calibrated scenario).

Speed and start overhead: every task that completed on a node of the type gives
``x = work_core_s / cores`` and its measured runtime ``y = end_s - start_s``; the
simulator's model ``y = start_overhead_s + x / speed`` is fitted by least squares
(overhead kept ≥ 0).  A live run's median start lag of tasks started on their arrival
is folded into the overhead; the lag after another task's end and the speeds alone and
while other nodes ran tasks are reported, not modelled.  Power: only from measured
readings at more than one CPU utilisation (``power_idle_w`` and ``power_max_w`` of the
linear model), the measured power while booting and the measured boots.  Several runs
on the same nodes are pooled into one fit.  The fitted link of a run with container
images comes from :mod:`rpiaas.analysis.linkfit`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import NodeType, PowerState
from ..rundir.fidelity import read_fidelity
from ..rundir.reader import Run
from ..rundir.sources import MEASURED
from .linkfit import LinkFit
from .stats import fit_line

__all__ = ["MIN_POWER_SPREAD", "TypeFit", "fit_node_types", "measured_boots", "power_mape", "uninformative"]

MIN_POWER_SPREAD = 0.05  # utilisation range needed to fit a power line
_MIN_BOOT_SAMPLES = 2  # measured readings while booting needed for the power of a boot


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
    if u.size < 3 or float(np.ptp(u)) < MIN_POWER_SPREAD:
        return None, None, int(u.size)
    design = np.column_stack([np.ones_like(u), u])
    (idle, slope), *_ = np.linalg.lstsq(design, p, rcond=None)
    idle = max(0.0, float(idle))
    return idle, max(idle, idle + float(slope)), int(u.size)


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
