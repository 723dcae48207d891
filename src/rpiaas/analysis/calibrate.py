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

The fits themselves are :mod:`rpiaas.analysis.typefit`'s (and :mod:`~rpiaas.analysis.linkfit`'s).
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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..inputs.source import InputError, Source, load_file
from ..model import PROFILES, NodeType
from ..rundir.fidelity import relative_error
from ..rundir.reader import Run, RunFileError, load_run
from ..rundir.sources import MEASURED, sources_of
from ..workload import TaskList
from .compare import compare_tasks, same_tasks
from .linkfit import LinkFit, fit_links
from .typefit import MIN_POWER_SPREAD, TypeFit, fit_node_types, power_mape, uninformative

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


class CalibrateError(ValueError):
    """A run that cannot be calibrated on; the message says which and why, in one line."""


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
                       f"little spread in its CPU utilisation (at least 3 readings over {MIN_POWER_SPREAD:g})")
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
