"""Calibrate the simulator to a testbed run: node-type parameters fitted by least squares.

For each node type, every task that completed on a node of that type gives
a pair ``(x, y)``: ``x = work_core_s / cores`` (the task's work per core in
reference-core seconds) and ``y = end_s - start_s`` (its measured runtime).
The simulator's model is ``y = start_overhead_s + x / speed``, a straight
line, fitted by least squares: the slope gives ``speed``, the intercept
``start_overhead_s`` (kept ≥ 0; with a single task size the overhead cannot
be told apart from the speed and stays 0).  Where ``nodes.csv`` has power
readings of nodes that are on at more than one utilisation, power is fitted
the same way: ``power_w = power_idle_w + (power_max_w - power_idle_w) * u``.

:func:`calibrate` writes a scenario whose cluster uses custom node types
``<type>-calibrated`` (``base:`` the original, with the fitted values), and
simulates the scenario before and after to measure the mean per-task
response error against the run.
"""

from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..inputs.source import InputError, Source, load_file
from ..model import PROFILES
from ..rundir.reader import Run, RunFileError, load_run
from .compare import compare_tasks, same_tasks

__all__ = [
    "Calibration",
    "TypeFit",
    "calibrate",
    "calibrated_scenario",
    "fit_node_types",
    "format_calibration",
]

SUFFIX = "-calibrated"
_MIN_POWER_SPREAD = 0.05  # utilisation range needed to fit a power line


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
    power_samples: int = 0


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


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def fit_line(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` with ``a ≥ 0``; ``(a, b)``.  A single x gives ``a = 0``."""
    if x.size >= 2 and float(np.ptp(x)) > 0:
        design = np.column_stack([np.ones_like(x), x])
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        if a >= 0:
            return float(a), float(b)
    xx = float(np.dot(x, x))
    return 0.0, (float(np.dot(x, y)) / xx if xx > 0 else math.nan)


def fit_node_types(run: Run, types: dict[str, str] | None = None) -> dict[str, TypeFit]:
    """Fit speed and start overhead (and power where measured) of each node type in ``run``.

    ``types`` names each node's type (by node name); default: the run's own.
    """
    types = run.node_types if types is None else types
    type_of_node = np.array([types.get(n, "") for n in run.node_names] or [""], dtype=object)
    ok = run.completed & np.isfinite(run.start_s) & np.isfinite(run.end_s) & (run.node >= 0)
    ok &= _worked(run)
    node_type = type_of_node[run.node[ok]] if ok.any() else np.zeros(0, dtype=object)
    x_all = run.work_core_s[ok] / run.cores[ok]
    y_all = run.end_s[ok] - run.start_s[ok]
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
        idle, peak, samples = _fit_power(run, t, types)
        # rounding noise of an exact fit is no overhead
        fits[t] = TypeFit(t, int(x.size), 1.0 / b, a if a > 1e-9 else 0.0, rmse, idle, peak, samples)
    return fits


def _worked(run: Run) -> Any:
    """The tasks whose runtimes the node made: in a live run of ``--task-kind scenario``,
    ``sleep`` tasks slept their modelled runtime, which says nothing of the node."""
    live = run.record.get("live")
    worked = np.ones(run.start_s.shape, dtype=bool)
    if isinstance(live, dict) and live.get("task_kind") == "scenario" and run.kind is not None \
            and "sleep" in run.kind_names:
        worked = run.kind != run.kind_names.index("sleep")
    return worked


def _fit_power(run: Run, type_name: str, types: dict[str, str]) -> tuple[float | None, float | None, int]:
    s = run.series
    if s is None or not s.node.size:
        return None, None, 0
    of_type = np.array([types.get(n) == type_name for n in run.node_names], dtype=bool)
    sel = of_type[s.node] & s.on & np.isfinite(s.power_w) & np.isfinite(s.utilization)
    u, p = s.utilization[sel], s.power_w[sel]
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
        if fit.power_idle_w is not None and fit.power_max_w is not None:
            spec["power_idle_w"] = _r(fit.power_idle_w)
            spec["power_max_w"] = _r(fit.power_max_w)
        spec["source"] = (f"fitted by rpiaas calibrate to {origin} ({fit.tasks} tasks; "
                          f"runtime rmse {fit.rmse_s:.3g} s)")
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


def _error(live: Run, sim_dir: Path) -> float | None:
    """Mean absolute per-task response difference between a simulated run and ``live``."""
    sim = load_run(sim_dir, series=False)
    if same_tasks(live, sim) is not None:
        return None
    mean_abs: float | None = compare_tasks(live, sim)["response_diff_s"]["mean_abs"]
    return mean_abs


def calibrate(live_run: str | Path, out: str | Path, scenario: str | Path | None = None,
              simulate_check: bool = True, keep_runs: str | Path | None = None) -> Calibration:
    """Fit the node types of ``scenario`` (default: the run's own) to ``live_run``; write ``out``.

    With ``simulate_check``, simulate the scenario before and after calibration
    and measure each one's mean per-task response error against the run (run
    directories under ``keep_runs`` if given, else discarded).
    """
    live = load_run(live_run)
    data, base = _scenario_data(live, scenario)
    # the types to fit are the scenario's: a node is of the type it is given there
    types = None
    if scenario is not None:
        given = {n.name: n.type.name for n in _build(data, str(scenario), base).cluster.nodes}
        types = {name: given.get(name, "") for name in live.node_names}
    fits = fit_node_types(live, types)
    if not fits:
        raise RunFileError(f"{live.path / 'tasks.csv'}: no completed task on a known node type "
                           "to fit (node types come from run.json 'nodes', or the scenario given)")
    new = calibrated_scenario(data, fits, str(live.path))
    out_path = Path(out)
    _build(new, str(out_path), base)  # check it before writing it
    out_path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"# Calibrated by `rpiaas calibrate {live.path}`: node types fitted to that run\n"
            "# (speed and start_overhead_s by least squares on task runtimes).\n")
    out_path.write_text(head + yaml.safe_dump(new, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
    result = Calibration(fits, out_path)
    if not simulate_check:
        result.checked = False
        return result
    from ..sim import simulate

    with tempfile.TemporaryDirectory(prefix="rpiaas-calibrate-") as tmp:
        runs = Path(keep_runs) if keep_runs is not None else Path(tmp)
        before, after = runs / "before", runs / "after"
        simulate(_build(data, str(out_path), base), before)
        simulate(_build(new, str(out_path), base), after)
        result.error_before_s = _error(live, before)
        result.error_after_s = _error(live, after)
        if keep_runs is not None:
            result.before_run, result.after_run = before, after
    return result


def format_calibration(result: Calibration) -> str:
    """The fitted parameters and the errors before and after, as terminal lines."""
    lines = []
    for t, f in result.fits.items():
        base = PROFILES.get(t)
        was = f" (was {base.speed:g})" if base is not None else ""
        power = ""
        if f.power_idle_w is not None and f.power_max_w is not None:
            power = f", power {f.power_idle_w:.3g}–{f.power_max_w:.3g} W ({f.power_samples} samples)"
        lines.append(f"{t}: {f.tasks} tasks, speed {f.speed:.4g}{was}, start overhead "
                     f"{f.start_overhead_s:.4g} s, runtime rmse {f.rmse_s:.3g} s{power}")
    b, a = result.error_before_s, result.error_after_s
    if not result.checked:
        pass
    elif b is not None and a is not None:
        change = f" ({(a - b) / b * 100:+.1f} %)" if b > 0 else ""
        lines.append(f"mean response error per task against the run: before {b:.4g} s, "
                     f"after {a:.4g} s{change}")
    else:
        lines.append("mean response error: not measured (the simulated runs do not have the "
                     "run's tasks; is this the run's scenario?)")
    if result.before_run is not None:
        lines.append(f"simulated runs: {result.before_run} (before), {result.after_run} (after)")
    lines.append(f"calibrated scenario: {result.out}")
    return "\n".join(lines)
