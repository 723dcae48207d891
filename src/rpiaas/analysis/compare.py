"""Compare run directories: summaries side by side, task by task, node by node.

Any two runs of the result format can be compared — a simulation against a
testbed replay of the same scenario, one policy against another, one seed
against another.  The first run is the reference; each other run is compared
with it:

- the summary metrics, with absolute and relative differences;
- when both ran the same tasks (same ids, cores and work): per-task wait and
  response differences (mean, p95, the worst tasks), the share of tasks placed
  on the same node, and the distributions of wait and response times compared
  (two-sample Kolmogorov–Smirnov statistic and p-value, Wasserstein distance);
- per node: energy (and where it comes from), mean allocated and CPU
  utilisation and mean power, and the cluster's utilisation and power over time.

Every energy, power and utilisation figure carries its source (``measured``,
``modelled-from-measured``, ``modelled``: :mod:`rpiaas.rundir.sources`); where
neither side of a figure was measured, its row says ``modelled on both sides``
instead of a verdict, since a model that agrees with itself says nothing.
Given several live runs of one scenario (``live_runs``), each other run is
also judged against how much the live runs differ from each other
(:func:`live_spread`).

:func:`compare_runs` returns all of it as a JSON-ready dict (``compare.json``);
:func:`rpiaas.analysis.tables.format_comparison` renders it as terminal
tables, and :mod:`rpiaas.analysis.report` as a self-contained HTML page.
Runs are read by :mod:`rpiaas.rundir.reader`: bad input (a missing or corrupt
run directory) raises :class:`~rpiaas.rundir.reader.RunFileError` naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..rundir.fidelity import BOTH_MODELLED, REL_FLOOR, relative_error
from ..rundir.metrics import flat_summary
from ..rundir.reader import Run, load_run
from ..rundir.sources import both_modelled, metric_source, sources_of
from .gantt import gantt_model
from .stats import agreement, cohens_d, ks_2samp, wasserstein

__all__ = [
    "FORMAT",
    "compare_loaded",
    "compare_runs",
    "compare_summary",
    "compare_tasks",
    "live_spread",
    "same_tasks",
    "tolerance_of",
    "write_comparison",
]

FORMAT = "rpiaas-compare/1"
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_SERIES_POINTS = 400  # points kept of each time series for plots
_WORST = 10  # tasks listed as the worst disagreements
_NODE_PANELS = 12  # nodes whose own series the report overlays (the first ones)


def _num(x: float) -> float | None:
    """A JSON-friendly number: ``None`` for nan/inf, 12 significant digits."""
    return float(f"{x:.12g}") if math.isfinite(x) else None


def _diff_stats(d: Floats) -> dict[str, Any]:
    if not d.size:
        return {"tasks": 0, "mean": None, "mean_abs": None, "rmse": None, "p95_abs": None,
                "max_abs": None}
    ad = np.abs(d)
    return {"tasks": int(d.size), "mean": _num(float(d.mean())), "mean_abs": _num(float(ad.mean())),
            "rmse": _num(math.sqrt(float(np.mean(d * d)))),
            "p95_abs": _num(float(np.percentile(ad, 95))), "max_abs": _num(float(ad.max()))}


# ---------------------------------------------------------------- comparing
def same_tasks(a: Run, b: Run) -> str | None:
    """``None`` if both runs have the same task set (ids, cores, work); else why not."""
    if a.task_id.size != b.task_id.size:
        return f"different task sets ({a.task_id.size:,} and {b.task_id.size:,} tasks)"
    if not np.array_equal(a.task_id, b.task_id):
        return "different task sets (different task ids)"
    if not np.array_equal(a.cores, b.cores) or not np.allclose(
            a.work_core_s, b.work_core_s, rtol=1e-9, atol=1e-12, equal_nan=True):
        return "different task sets (same ids, different cores or work)"
    return None


def compare_summary(a: dict[str, Any], b: dict[str, Any], sources_a: dict[str, str] | None = None,
                    sources_b: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each summary metric of ``a`` and ``b`` with ``diff = b - a`` and ``rel = diff / |a|``.

    With both runs' ``sources``, a metric that has one (energy, power, utilisation, boots)
    carries both (``source``), and where neither was measured ``verdict`` is
    ``"modelled on both sides"``.
    """
    a, b = flat_summary(a), flat_summary(b)  # a node type's figures each a metric of its own
    out: dict[str, dict[str, Any]] = {}
    for key in list(a) + [k for k in b if k not in a]:
        va: Any = a.get(key)
        vb: Any = b.get(key)
        row: dict[str, Any] = {"a": va, "b": vb, "diff": None, "rel": None}
        if _is_num(va) and _is_num(vb):
            diff = float(vb) - float(va)
            row["diff"] = _num(diff)
            rel = relative_error(float(vb), float(va))
            row["rel"] = _num(rel) if rel is not None else (0.0 if not diff else None)
        if sources_a is not None and sources_b is not None:
            sa, sb = _source(a, sources_a, key), _source(b, sources_b, key)
            if sa is not None and sb is not None:
                row["source"] = {"a": sa, "b": sb}
                if both_modelled(sa, sb):
                    row["verdict"] = BOTH_MODELLED
        out[key] = row
    return out


def _source(flat: dict[str, Any], sources: dict[str, str], key: str) -> str | None:
    """Where the summary metric ``key`` of a run comes from: a node type's energy from that
    type's own ``energy_source`` (its nodes' meters, not the run's), the rest from ``sources``."""
    prefix, _, name = key.rpartition(".")
    own = flat.get(f"{prefix}.energy_source") if prefix and name == "energy_j" else None
    return str(own) if own is not None else metric_source(sources, key)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _node_set(run: Run, jobs: dict[int, list[tuple[str, int]]], tid: int) -> set[str]:
    """The names of the nodes task ``tid`` ran on in ``run``: a job's parts', else its one node."""
    if tid in jobs:
        return {name for name, _ in jobs[tid]}
    i = int(np.searchsorted(run.task_id, tid))
    return {run.node_names[run.node[i]]}


def _pull_diff(a: Run, b: Run) -> dict[str, Any]:
    """*B − A* of ``pull_s`` over the tasks with a pull in both runs (a container task's image
    pull, measured live, modelled in simulation; 0 where its node held the image), and how
    many of those each run pulled something for (``pulled_a``, ``pulled_b``)."""
    if a.pull_s is None or b.pull_s is None:
        return {**_diff_stats(np.zeros(0)), "pulled_a": 0, "pulled_b": 0}
    both = np.isfinite(a.pull_s) & np.isfinite(b.pull_s)
    pa, pb = a.pull_s[both], b.pull_s[both]
    return {**_diff_stats(pb - pa), "pulled_a": int(np.count_nonzero(pa > 0)),
            "pulled_b": int(np.count_nonzero(pb > 0))}


def compare_tasks(a: Run, b: Run, tolerance_s: float = 0.0) -> dict[str, Any]:
    """Task-by-task comparison of two runs of the same task set (arrays aligned by id).

    Beside the distribution tests, each of wait and response has its effect size
    (Cohen's d), its mean difference in seconds and whether that is within
    ``tolerance_s`` (``agree``): below the testbed's timing jitter a difference
    is agreement, whatever a KS test says of it.
    """
    both_started = np.isfinite(a.wait_s) & np.isfinite(b.wait_s)
    both_done = a.completed & b.completed & np.isfinite(a.response_s) & np.isfinite(b.response_s)
    dw = b.wait_s[both_started] - a.wait_s[both_started]
    dr = b.response_s[both_done] - a.response_s[both_done]
    # placement: node names, as the two runs number their nodes independently
    placed = (a.node >= 0) & (b.node >= 0)
    where_a = {n: i for i, n in enumerate(a.node_names)}
    translate = np.array([where_a.get(n, -2) for n in b.node_names] or [-2], dtype=np.int64)
    b_as_a = translate[b.node[placed]] if placed.any() else np.zeros(0, dtype=np.int64)
    agree = a.node[placed] == b_as_a
    jobs_a, jobs_b = a.parts(), b.parts()
    if jobs_a or jobs_b:  # a job that spanned nodes is on the same nodes if it has the same set of them
        ids = a.task_id[placed]
        for j in np.flatnonzero(np.isin(ids, np.fromiter({*jobs_a, *jobs_b}, dtype=np.int64))):
            tid = int(ids[j])
            agree[j] = _node_set(a, jobs_a, tid) == _node_set(b, jobs_b, tid)
    same = int(np.count_nonzero(agree))
    n_placed = int(np.count_nonzero(placed))
    worst = []
    if dr.size:
        ids = a.task_id[both_done]
        k = min(_WORST, dr.size)
        top = np.argpartition(-np.abs(dr), k - 1)[:k]
        top = top[np.argsort(-np.abs(dr[top]), kind="stable")]
        done_idx = np.flatnonzero(both_done)
        for j in top:
            i = done_idx[j]
            worst.append({"task_id": int(ids[j]), "response_a_s": _num(float(a.response_s[i])),
                          "response_b_s": _num(float(b.response_s[i])), "diff_s": _num(float(dr[j])),
                          "node_a": a.node_names[a.node[i]] if a.node[i] >= 0 else None,
                          "node_b": b.node_names[b.node[i]] if b.node[i] >= 0 else None})
    ks_w, ks_wp = ks_2samp(a.wait_s, b.wait_s)
    ks_r, ks_rp = ks_2samp(a.response_s[a.completed], b.response_s[b.completed])
    wait_stats, response_stats = _diff_stats(dw), _diff_stats(dr)
    return {
        "pull_diff_s": _pull_diff(a, b),
        "matched": int(a.task_id.size),
        "both_completed": int(np.count_nonzero(both_done)),
        "same_state": _num(float(np.mean(a.state == b.state))) if a.state.size else None,
        "wait_diff_s": wait_stats,
        "response_diff_s": response_stats,
        "placement": {"both_placed": n_placed, "same_node": same,
                      "agreement": _num(same / n_placed) if n_placed else None},
        "distributions": {
            "wait_s": {"ks": _num(ks_w), "ks_pvalue": _num(ks_wp),
                       "wasserstein_s": _num(wasserstein(a.wait_s, b.wait_s)),
                       "cohens_d": _num(cohens_d(a.wait_s, b.wait_s)),
                       **agreement(wait_stats["mean"], tolerance_s)},
            "response_s": {"ks": _num(ks_r), "ks_pvalue": _num(ks_rp),
                           "wasserstein_s": _num(wasserstein(a.response_s[a.completed],
                                                             b.response_s[b.completed])),
                           "cohens_d": _num(cohens_d(a.response_s[a.completed],
                                                     b.response_s[b.completed])),
                           **agreement(response_stats["mean"], tolerance_s)},
        },
        "worst": worst,
    }


def node_table(run: Run) -> dict[str, dict[str, Any]]:
    """Per node: type, energy and its source (``run.json``), mean allocated and CPU utilisation
    and mean power (``nodes.csv``)."""
    out: dict[str, dict[str, Any]] = {}
    default_source = sources_of(run.record)["energy_j"]
    for n in run.record.get("nodes") or []:
        if isinstance(n, dict) and "node" in n:
            out[str(n["node"])] = {"type": n.get("type"), "energy_j": n.get("energy_j"),
                                   "energy_source": n.get("energy_source", default_source),
                                   "mean_utilization": None, "mean_cpu_utilization": None,
                                   "mean_power_w": None}
    s = run.series
    if s is not None and s.node.size:
        count = np.bincount(s.node, minlength=len(run.node_names))
        util = np.bincount(s.node, weights=np.nan_to_num(s.utilization), minlength=count.size)
        cpu = np.bincount(s.node, weights=np.nan_to_num(s.cpu_utilization), minlength=count.size)
        power = np.bincount(s.node, weights=np.nan_to_num(s.power_w), minlength=count.size)
        for i, name in enumerate(run.node_names):
            if i < count.size and count[i]:
                row = out.setdefault(name, {"type": None, "energy_j": None, "energy_source": default_source})
                row["mean_utilization"] = _num(util[i] / count[i])
                row["mean_cpu_utilization"] = _num(cpu[i] / count[i])
                row["mean_power_w"] = _num(power[i] / count[i])
    return out


def cluster_series(run: Run, points: int = _SERIES_POINTS) -> dict[str, list[float | None]]:
    """The cluster's mean allocated and CPU utilisation and total power at each sample time,
    thinned to ``points``."""
    s = run.series
    if s is None or not s.time_s.size:
        return {"time_s": [], "utilization": [], "cpu_utilization": [], "power_w": []}
    times, inverse = np.unique(s.time_s, return_inverse=True)
    count = np.bincount(inverse, minlength=times.size)
    util = np.bincount(inverse, weights=np.nan_to_num(s.utilization), minlength=times.size) / count
    cpu = np.bincount(inverse, weights=np.nan_to_num(s.cpu_utilization), minlength=times.size) / count
    power = np.bincount(inverse, weights=np.nan_to_num(s.power_w), minlength=times.size)
    keep = _thin(times.size, points)
    return {"time_s": [_num(x) for x in times[keep]], "utilization": [_num(x) for x in util[keep]],
            "cpu_utilization": [_num(x) for x in cpu[keep]], "power_w": [_num(x) for x in power[keep]]}


def node_series(run: Run, names: Sequence[str], points: int = 200,
                ) -> dict[str, dict[str, list[float | None]]]:
    """Allocated and CPU utilisation and power of each named node over time, thinned to
    ``points`` samples."""
    s = run.series
    out: dict[str, dict[str, list[float | None]]] = {}
    if s is None or not s.time_s.size:
        return out
    where = {n: i for i, n in enumerate(run.node_names)}
    for name in names:
        code = where.get(name)
        if code is None:
            continue
        rows = np.flatnonzero(s.node == code)
        rows = rows[_thin(rows.size, points)]
        out[name] = {"time_s": [_num(x) for x in s.time_s[rows]],
                     "utilization": [_num(x) for x in s.utilization[rows]],
                     "cpu_utilization": [_num(x) for x in s.cpu_utilization[rows]],
                     "power_w": [_num(x) for x in s.power_w[rows]]}
    return out


def _thin(n: int, points: int) -> Ints:
    if n <= points:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))


def quantiles(x: Floats, points: int = 200) -> list[float | None]:
    """``points`` evenly spaced quantiles of the finite values of ``x`` (an empirical CDF to plot)."""
    x = x[np.isfinite(x)]
    if not x.size:
        return []
    return [_num(float(v)) for v in np.quantile(x, np.linspace(0, 1, points))]


def scatter(a: Run, b: Run, points: int = 3000) -> dict[str, list[float | None]]:
    """Response of each task in ``a`` against ``b`` (both completed), evenly thinned to ``points``."""
    done = np.flatnonzero(a.completed & b.completed & np.isfinite(a.response_s)
                          & np.isfinite(b.response_s))
    keep = done[_thin(done.size, points)]
    return {"x": [_num(float(v)) for v in a.response_s[keep]],
            "y": [_num(float(v)) for v in b.response_s[keep]]}


def _describe(run: Run) -> dict[str, Any]:
    r = run.record
    return {"label": run.label, "path": str(run.path), "mode": r.get("mode"), "name": r.get("name"),
            "policy": r.get("policy"), "seed": r.get("seed"), "tasks": int(run.task_id.size),
            "sources": sources_of(r)}


def _labels(runs: Sequence[Run]) -> None:
    names = [r.path.resolve().name or str(r.path) for r in runs]
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        run.label = name if names.count(name) == 1 else f"{name} ({chr(ord('A') + i)})"


def tolerance_of(runs: Sequence[Run], given_s: float | None = None) -> dict[str, Any]:
    """The timing tolerance of a comparison: ``given_s`` if given, else the largest p95
    start lag a live run among ``runs`` measured (its testbed's jitter), else 0."""
    if given_s is not None:
        return {"tolerance_s": given_s, "source": "given"}
    measured = [(float(lag["p95"]), r.label) for r in runs
                if isinstance(live := r.record.get("live"), dict)
                and isinstance(lag := live.get("start_lag_s"), dict) and _is_num(lag.get("p95"))]
    if not measured:
        return {"tolerance_s": 0.0, "source": "none: no live run measured its jitter"}
    value, label = max(measured)
    return {"tolerance_s": max(value, 0.0), "source": f"measured: p95 start lag of {label}"}


def compare_runs(paths: Sequence[str | Path], tolerance_s: float | None = None,
                 live_runs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Compare run directories (the first is the reference); the content of ``compare.json``.

    Also carries what the report plots (``plots``): response-time quantiles,
    the cluster series and per-task response pairs.  With ``live_runs`` (at least two
    live runs of one scenario, compared too, after ``paths``), ``spread`` judges every other
    run against how much the live runs differ from each other (:func:`live_spread`).
    """
    if live_runs and len(live_runs) < 2:
        raise ValueError("--live-runs needs at least two live runs (their spread is what the others "
                         "are judged against)")
    given = [Path(p) for p in paths]
    extra = [Path(p) for p in live_runs if Path(p).resolve() not in {g.resolve() for g in given}]
    if len(given) + len(extra) < 2:
        raise ValueError("compare needs at least two run directories")
    runs = [load_run(p) for p in [*given, *extra]]
    live_set = {Path(p).resolve() for p in live_runs}
    return compare_loaded(runs, tolerance_s, [i for i, r in enumerate(runs) if r.path.resolve() in live_set])


def live_spread(runs: Sequence[Run], live: Sequence[int], tolerance_s: float = 0.0) -> dict[str, Any]:
    """Each other run of ``runs`` judged against the spread of the live runs ``live`` (indices).

    For every numeric summary metric the live runs have: their mean, standard deviation
    (n - 1), range and relative range (``(max - min) / |mean|``), and for each other run
    its value, its relative error against the live mean and a verdict:

    - ``inside the live runs' range``: between the smallest and the largest live value;
    - ``within 2 sd of the live runs' mean``;
    - ``within the timing tolerance``: a makespan, wait or response time whose distance from
      the live mean is at most ``tolerance_s`` (the testbed's jitter, :func:`tolerance_of`);
    - ``outside the testbed's spread``: farther than both, with its distance in standard
      deviations (``sd_away``);
    - ``modelled on both sides``: neither it nor the live runs measured the figure (a
      model's energy against energies modelled from measured utilisation), no verdict.
    """
    live_runs = [runs[i] for i in live]
    others = [i for i in range(len(runs)) if i not in set(live)]
    summaries = [r.record.get("summary", {}) for r in live_runs]
    live_sources = [sources_of(r.record) for r in live_runs]
    metrics: dict[str, Any] = {}
    keys = [k for k in summaries[0] if all(_is_num(s.get(k)) for s in summaries)] if summaries else []
    for key in keys:
        if key in _COUNTS:
            continue
        vals = np.array([float(s[key]) for s in summaries])
        mean, sd = float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        lo, hi = float(vals.min()), float(vals.max())
        spread = (hi - lo) / abs(mean) if abs(mean) >= REL_FLOOR else None
        row: dict[str, Any] = {"live_mean": _num(mean), "live_sd": _num(sd), "live_min": _num(lo),
                               "live_max": _num(hi), "live_spread_rel": _num(spread) if spread is not None else None,
                               "runs": {}}
        for i in others:
            value = runs[i].record.get("summary", {}).get(key)
            judged: dict[str, Any] = {"value": value, "error_rel": None, "sd_away": None, "agree": None,
                                      "verdict": None}
            src = metric_source(sources_of(runs[i].record), key)
            if src is not None and all(both_modelled(src, metric_source(ls, key)) for ls in live_sources):
                judged["verdict"] = BOTH_MODELLED
            elif _is_num(value):
                v = float(value)
                err = v - mean
                rel = relative_error(v, mean)
                judged["error_rel"] = _num(rel) if rel is not None else None
                judged["sd_away"] = _num(abs(err) / sd) if sd > 0 else None
                if lo <= v <= hi:
                    judged["agree"], judged["verdict"] = True, "inside the live runs' range"
                elif sd > 0 and abs(err) <= 2 * sd:
                    judged["agree"], judged["verdict"] = True, "within 2 sd of the live runs' mean"
                elif key in _TIMES and abs(err) <= tolerance_s:
                    judged["agree"], judged["verdict"] = True, "within the timing tolerance"
                else:
                    judged["agree"], judged["verdict"] = False, "outside the testbed's spread"
            row["runs"][runs[i].label] = judged
        metrics[key] = row
    return {"live_runs": [r.label for r in live_runs], "judged": [runs[i].label for i in others],
            "metrics": metrics}


# the summary's times of tasks, which the testbed's timing jitter moves (seconds)
_TIMES = ("makespan_s", "duration_s", "mean_wait_s", "p95_wait_s", "max_wait_s", "mean_response_s",
          "workflow_makespan_s")
# summary counts of tasks: the same in every run of one scenario, nothing to judge
_COUNTS = ("tasks", "completed", "rejected", "failed", "killed", "unfinished")


def compare_loaded(runs: Sequence[Run], tolerance_s: float | None = None,
                   live: Sequence[int] = ()) -> dict[str, Any]:
    """:func:`compare_runs` on runs already loaded (``live``: the indices of the live runs
    whose spread the others are judged against)."""
    _labels(runs)
    tolerance = tolerance_of(runs, tolerance_s)
    ref = runs[0]
    declared = [n["node"] for r in runs for n in r.record.get("nodes") or []
                if isinstance(n, dict) and isinstance(n.get("node"), str)]
    panel_nodes = list(dict.fromkeys([*declared, *(n for r in runs for n in r.node_names if n)]))
    panel_nodes = panel_nodes[:_NODE_PANELS]
    pairs = []
    scatters = []
    for i, other in enumerate(runs[1:], start=1):
        why = same_tasks(ref, other)
        pair: dict[str, Any] = {"a": 0, "b": i, "same_tasks": why is None, "note": why,
                                "summary": compare_summary(ref.record["summary"], other.record["summary"],
                                                           sources_of(ref.record), sources_of(other.record)),
                                "tasks": None}
        if why is None:
            pair["tasks"] = compare_tasks(ref, other, tolerance["tolerance_s"])
            scatters.append({"a": 0, "b": i, **scatter(ref, other)})
        pairs.append(pair)
    return {
        "format": FORMAT,
        "runs": [_describe(r) for r in runs],
        "reference": 0,
        "tolerance": tolerance,
        "spread": live_spread(runs, live, tolerance["tolerance_s"]) if len(live) >= 2 else None,
        "pairs": pairs,
        "nodes": [node_table(r) for r in runs],
        "plots": {
            "response_quantiles": [quantiles(r.response_s[r.completed]) for r in runs],
            "wait_quantiles": [quantiles(r.wait_s) for r in runs],
            "series": [cluster_series(r) for r in runs],
            "node_series": [node_series(r, panel_nodes) for r in runs],
            "scatter": scatters,
            "gantt": [gantt_model(r, points=300) for r in runs],
        },
    }


def write_comparison(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``compare.json`` and ``report.html`` into ``out``; their paths."""
    from .report import render_report

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    j = d / "compare.json"
    j.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    h = d / "report.html"
    h.write_text(render_report(result), encoding="utf-8")
    return j, h
