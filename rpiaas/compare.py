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
- per node: energy, mean utilisation and mean power, and the cluster's
  utilisation and power over time.

:func:`compare_runs` returns all of it as a JSON-ready dict (``compare.json``);
:func:`format_comparison` renders it as terminal tables, and
:mod:`rpiaas.report` as a self-contained HTML page.  Bad input (a missing or
corrupt run directory) raises :class:`RunFileError` naming the file.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .results import NODE_COLUMNS, TASK_COLUMNS
from .stats import agreement, cohens_d, ks_2samp, wasserstein

__all__ = [
    "FORMAT",
    "Run",
    "RunFileError",
    "compare_runs",
    "format_comparison",
    "ks_2samp",
    "load_run",
    "wasserstein",
    "write_comparison",
]

FORMAT = "rpiaas-compare/1"
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_CHUNK = 100_000  # csv rows parsed per numpy conversion
_SERIES_POINTS = 400  # points kept of each time series for plots
_WORST = 10  # tasks listed as the worst disagreements
_NODE_PANELS = 12  # nodes whose own series the report overlays (the first ones)
_STATES = ("queued", "running", "completed", "rejected", "failed", "killed")
_COMPLETED = _STATES.index("completed")


class RunFileError(ValueError):
    """A run directory, or one of its files, is missing or unreadable; the message names it."""


@dataclass
class NodeSeries:
    """``nodes.csv`` as arrays: one entry per row, ``node`` as an index into ``Run.node_names``."""

    time_s: Floats
    node: Ints
    utilization: Floats
    power_w: Floats
    on: npt.NDArray[np.bool_]


@dataclass
class Run:
    """A run directory in memory: ``run.json`` and ``tasks.csv`` as arrays sorted by task id.

    Times are ``nan`` where a task never reached that point; ``node`` is -1
    where it never ran.  ``state`` indexes ``("queued", "running",
    "completed", "rejected", "failed", "killed")``.
    """

    path: Path
    record: dict[str, Any]
    task_id: Ints
    arrival_s: Floats
    start_s: Floats
    end_s: Floats
    wait_s: Floats
    response_s: Floats
    node: Ints
    state: Ints
    cores: Ints
    work_core_s: Floats
    node_names: list[str]
    series: NodeSeries | None = None
    label: str = ""
    _types: dict[str, str] = field(default_factory=dict)

    @property
    def completed(self) -> npt.NDArray[np.bool_]:
        done: npt.NDArray[np.bool_] = self.state == _COMPLETED
        return done

    @property
    def node_types(self) -> dict[str, str]:
        """Node name -> node type name, from ``run.json``."""
        if not self._types:
            for n in self.record.get("nodes") or []:
                if isinstance(n, dict) and "node" in n:
                    self._types[str(n["node"])] = str(n.get("type", ""))
        return self._types


# ---------------------------------------------------------------- reading
def load_run(path: str | Path, series: bool = True) -> Run:
    """Read a run directory (``series``: also ``nodes.csv``); :class:`RunFileError` if unreadable."""
    p = Path(path)
    if not p.exists():
        raise RunFileError(f"{p}: no such run directory")
    if not p.is_dir():
        raise RunFileError(f"{p}: not a directory (expected a run directory)")
    record = _read_record(p / "run.json")
    cols = _read_tasks(p / "tasks.csv")
    run = Run(p, record, *cols)
    if series:
        run.series = _read_series(p / "nodes.csv", run.node_names)
    return run


def _read_record(f: Path) -> dict[str, Any]:
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{f}: no such file (not a run directory?)") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{f}:{e.lineno}: not valid JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunFileError(f"{f}: cannot read it: {e}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{f}: expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("summary"), dict):
        raise RunFileError(f"{f}: no 'summary' object (not a run record?)")
    return data


def _rows(f: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[list[str]]]]:
    """Chunks of rows of a CSV file whose header must start with ``columns``; (first line, rows)."""
    try:
        handle = open(f, newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise RunFileError(f"{f}: no such file") from None
    except OSError as e:
        raise RunFileError(f"{f}: cannot read it: {e}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise RunFileError(f"{f}: empty file (expected a header line)")
            if tuple(header[: len(columns)]) != tuple(columns):
                raise RunFileError(f"{f}:1: unexpected header (expected {','.join(columns)})")
            width = len(header)
            line = 2
            while True:
                chunk = list(itertools.islice(reader, _CHUNK))
                if not chunk:
                    return
                if len(set(map(len, chunk))) != 1 or len(chunk[0]) != width:
                    i, row = next((i, r) for i, r in enumerate(chunk) if len(r) != width)
                    raise RunFileError(f"{f}:{line + i}: expected {width} fields, got {len(row)}")
                yield line, chunk
                line += len(chunk)
        except csv.Error as e:
            raise RunFileError(f"{f}:{reader.line_num}: not valid CSV: {e}") from None
        except UnicodeDecodeError as e:
            raise RunFileError(f"{f}: not UTF-8 text: {e}") from None


def _floats(f: Path, line: int, name: str, values: Sequence[str]) -> Floats:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        pass  # empty fields (times a task never reached), or not numbers
    try:
        return np.array([v or "nan" for v in values], dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v or "nan")
            except ValueError:
                raise RunFileError(f"{f}:{line + i}: {name}: not a number: {v!r}") from None
        raise  # pragma: no cover


def _ints(f: Path, line: int, name: str, values: Sequence[str]) -> Ints:
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        for i, v in enumerate(values):
            if not v.strip().lstrip("-").isdigit():
                raise RunFileError(f"{f}:{line + i}: {name}: not an integer: {v!r}") from None
        raise  # pragma: no cover


def _codes(values: Iterable[str], codes: dict[str, int]) -> Ints:
    """Small integer codes for names ('' -> -1), extending ``codes`` as new names appear."""
    try:  # every name known already: the common case after the first rows
        return np.fromiter(map(codes.__getitem__, values), dtype=np.int64)
    except KeyError:
        pass
    get = codes.get
    out = []
    for v in values:
        c = get(v)
        if c is None:
            c = -1 if not v else codes.setdefault(v, len(codes))
        out.append(c)
    return np.array(out, dtype=np.int64)


def _read_tasks(f: Path) -> tuple[Any, ...]:
    idx = {c: i for i, c in enumerate(TASK_COLUMNS)}
    floats = ("arrival_s", "start_s", "end_s", "wait_s", "response_s", "work_core_s")
    parts: dict[str, list[Any]] = {k: [] for k in (*floats, "task_id", "node", "state", "cores")}
    nodes: dict[str, int] = {}
    state_codes = {s: i for i, s in enumerate(_STATES)}
    for line, chunk in _rows(f, TASK_COLUMNS):
        cols = list(zip(*chunk, strict=True))
        for name in floats:
            parts[name].append(_floats(f, line, name, cols[idx[name]]))
        parts["task_id"].append(_ints(f, line, "task_id", cols[idx["task_id"]]))
        parts["cores"].append(_ints(f, line, "cores", cols[idx["cores"]]))
        parts["node"].append(_codes(cols[idx["node"]], nodes))
        states = cols[idx["state"]]
        bad = set(states) - state_codes.keys()
        if not bad:
            parts["state"].append(np.fromiter(map(state_codes.__getitem__, states), dtype=np.int64))
            continue
        i = next(i for i, s in enumerate(states) if s in bad)
        raise RunFileError(f"{f}:{line + i}: state: unknown task state {states[i]!r}")
    arrays = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64 if k in (
        "task_id", "node", "state", "cores") else np.float64)) for k, v in parts.items()}
    order = np.argsort(arrays["task_id"], kind="stable")
    ids = arrays["task_id"][order]
    if ids.size > 1:
        dup = np.flatnonzero(ids[1:] == ids[:-1])
        if dup.size:
            raise RunFileError(f"{f}: task {int(ids[dup[0]])} has more than one row")
    names = [""] * len(nodes)
    for name, code in nodes.items():
        names[code] = name
    a = {k: v[order] for k, v in arrays.items()}
    return (a["task_id"], a["arrival_s"], a["start_s"], a["end_s"], a["wait_s"], a["response_s"],
            a["node"], a["state"], a["cores"], a["work_core_s"], names)


def _read_series(f: Path, names: list[str]) -> NodeSeries | None:
    if not f.exists():
        return None
    idx = {c: i for i, c in enumerate(NODE_COLUMNS)}
    codes = {n: i for i, n in enumerate(names)}
    t: list[Floats] = []
    node: list[Ints] = []
    util: list[Floats] = []
    power: list[Floats] = []
    on: list[npt.NDArray[np.bool_]] = []
    for line, chunk in _rows(f, NODE_COLUMNS):
        cols = list(zip(*chunk, strict=True))
        t.append(_floats(f, line, "time_s", cols[idx["time_s"]]))
        node.append(_codes(cols[idx["node"]], codes))
        util.append(_floats(f, line, "utilization", cols[idx["utilization"]]))
        power.append(_floats(f, line, "power_w", cols[idx["power_w"]]))
        on.append(np.array(cols[idx["state"]], dtype=object) == "on")
    names.extend([""] * (len(codes) - len(names)))
    for name, code in codes.items():
        names[code] = name
    if not t:
        return NodeSeries(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
                          np.zeros(0, dtype=bool))
    return NodeSeries(np.concatenate(t), np.concatenate(node), np.concatenate(util),
                      np.concatenate(power), np.concatenate(on))


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


def compare_summary(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each summary metric of ``a`` and ``b`` with ``diff = b - a`` and ``rel = diff / |a|``."""
    out: dict[str, dict[str, Any]] = {}
    for key in list(a) + [k for k in b if k not in a]:
        va: Any = a.get(key)
        vb: Any = b.get(key)
        row: dict[str, Any] = {"a": va, "b": vb, "diff": None, "rel": None}
        if _is_num(va) and _is_num(vb):
            diff = float(vb) - float(va)
            row["diff"] = _num(diff)
            row["rel"] = _num(diff / abs(float(va))) if va else (0.0 if not diff else None)
        out[key] = row
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
    same = int(np.count_nonzero(a.node[placed] == b_as_a))
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
    """Per node: type, energy (``run.json``), mean utilisation and power (``nodes.csv``)."""
    out: dict[str, dict[str, Any]] = {}
    for n in run.record.get("nodes") or []:
        if isinstance(n, dict) and "node" in n:
            out[str(n["node"])] = {"type": n.get("type"), "energy_j": n.get("energy_j"),
                                   "mean_utilization": None, "mean_power_w": None}
    s = run.series
    if s is not None and s.node.size:
        count = np.bincount(s.node, minlength=len(run.node_names))
        util = np.bincount(s.node, weights=np.nan_to_num(s.utilization), minlength=count.size)
        power = np.bincount(s.node, weights=np.nan_to_num(s.power_w), minlength=count.size)
        for i, name in enumerate(run.node_names):
            if i < count.size and count[i]:
                row = out.setdefault(name, {"type": None, "energy_j": None})
                row["mean_utilization"] = _num(util[i] / count[i])
                row["mean_power_w"] = _num(power[i] / count[i])
    return out


def cluster_series(run: Run, points: int = _SERIES_POINTS) -> dict[str, list[float | None]]:
    """The cluster's mean utilisation and total power at each sample time, thinned to ``points``."""
    s = run.series
    if s is None or not s.time_s.size:
        return {"time_s": [], "utilization": [], "power_w": []}
    times, inverse = np.unique(s.time_s, return_inverse=True)
    count = np.bincount(inverse, minlength=times.size)
    util = np.bincount(inverse, weights=np.nan_to_num(s.utilization), minlength=times.size) / count
    power = np.bincount(inverse, weights=np.nan_to_num(s.power_w), minlength=times.size)
    keep = _thin(times.size, points)
    return {"time_s": [_num(x) for x in times[keep]], "utilization": [_num(x) for x in util[keep]],
            "power_w": [_num(x) for x in power[keep]]}


def node_series(run: Run, names: Sequence[str], points: int = 200,
                ) -> dict[str, dict[str, list[float | None]]]:
    """Utilisation and power of each named node over time, thinned to ``points`` samples."""
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
            "policy": r.get("policy"), "seed": r.get("seed"), "tasks": int(run.task_id.size)}


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


def compare_runs(paths: Sequence[str | Path], tolerance_s: float | None = None) -> dict[str, Any]:
    """Compare run directories (the first is the reference); the content of ``compare.json``.

    Also carries what the report plots (``plots``): response-time quantiles,
    the cluster series and per-task response pairs.
    """
    if len(paths) < 2:
        raise ValueError("compare needs at least two run directories")
    runs = [load_run(p) for p in paths]
    return compare_loaded(runs, tolerance_s)


def compare_loaded(runs: Sequence[Run], tolerance_s: float | None = None) -> dict[str, Any]:
    """:func:`compare_runs` on runs already loaded."""
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
                                "summary": compare_summary(ref.record["summary"], other.record["summary"]),
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
        "pairs": pairs,
        "nodes": [node_table(r) for r in runs],
        "plots": {
            "response_quantiles": [quantiles(r.response_s[r.completed]) for r in runs],
            "wait_quantiles": [quantiles(r.wait_s) for r in runs],
            "series": [cluster_series(r) for r in runs],
            "node_series": [node_series(r, panel_nodes) for r in runs],
            "scatter": scatters,
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


# ---------------------------------------------------------------- terminal
def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:,.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
    return str(v)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def _table(rows: list[list[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("─" * w for w in widths))
    return lines


def format_comparison(result: dict[str, Any]) -> str:
    """Terminal tables: the summaries side by side, then each pair task by task and per node."""
    runs = result["runs"]
    letters = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(runs))]
    out = [f"{letters[i]}: {r['label']} ({r['mode']}, {r['policy']}, seed {r['seed']}, "
           f"{r['tasks']:,} tasks)" for i, r in enumerate(runs)]
    out.append("")
    head = ["metric", "A"]
    for p in result["pairs"]:
        b = letters[p["b"]]
        head += [b, f"{b}−A", f"{b}/A−1"]
    rows = [head]
    keys = list(result["pairs"][0]["summary"]) if result["pairs"] else []
    for key in keys:
        row = [key, _fmt(result["pairs"][0]["summary"][key]["a"])]
        for p in result["pairs"]:
            s = p["summary"].get(key, {})
            row += [_fmt(s.get("b")), _fmt(s.get("diff")), _pct(s.get("rel"))]
        rows.append(row)
    out += _table(rows, [False] + [True] * (len(head) - 1))
    for p in result["pairs"]:
        b = letters[p["b"]]
        out.append("")
        if p["tasks"] is None:
            out.append(f"A and {b}: {p['note']}: only the summaries are compared")
            continue
        t = p["tasks"]
        out.append(f"A and {b}, task by task ({t['matched']:,} tasks, {t['both_completed']:,} "
                   f"completed in both; differences are {b} − A)")
        rows = [["", "mean", "mean |d|", "p95 |d|", "max |d|", "KS", "KS p", "Wasserstein",
                 "Cohen d", "verdict"]]
        for what, key in (("wait s", "wait"), ("response s", "response")):
            d = t[f"{key}_diff_s"]
            dist = t["distributions"][f"{key}_s"]
            rows.append([what, _fmt(d["mean"]), _fmt(d["mean_abs"]), _fmt(d["p95_abs"]),
                         _fmt(d["max_abs"]), _fmt(dist["ks"]), _fmt(dist["ks_pvalue"]),
                         _fmt(dist["wasserstein_s"]), _fmt(dist.get("cohens_d")),
                         _verdict(dist)])
        out += _table(rows, [False] + [True] * 8 + [False])
        tol = result.get("tolerance", {})
        out.append(f"verdict: |mean difference| within the tolerance of {_fmt(tol.get('tolerance_s'))} s "
                   f"({tol.get('source', 'none')}) is agreement, whatever KS says")
        pl = t["placement"]
        agree = "—" if pl["agreement"] is None else f"{pl['agreement'] * 100:.1f} %"
        out.append(f"same node: {agree} of {pl['both_placed']:,} tasks placed in both")
        if t["worst"]:
            worst = ", ".join(f"{w['task_id']} ({w['diff_s']:+.4g} s)" for w in t["worst"][:5])
            out.append(f"largest response differences: {worst}")
    out.append("")
    out += _node_lines(result, letters)
    return "\n".join(out)


def _verdict(dist: dict[str, Any]) -> str:
    agree = dist.get("agree")
    return "—" if agree is None else "agree" if agree else "differ"


def _node_lines(result: dict[str, Any], letters: list[str]) -> list[str]:
    tables = result["nodes"]
    names = list(dict.fromkeys(n for t in tables for n in t))
    if not names:
        return []
    head = ["node"] + [f"{letters[i]} energy J" for i in range(len(tables))] + [
        f"{letters[i]} util" for i in range(len(tables))]
    rows = [head]
    for name in names[:50]:
        rows.append([name] + [_fmt(t.get(name, {}).get("energy_j")) for t in tables]
                    + [_fmt(t.get(name, {}).get("mean_utilization")) for t in tables])
    lines = _table(rows, [False] + [True] * (len(head) - 1))
    if len(names) > 50:
        lines.append(f"… and {len(names) - 50:,} more nodes (compare.json has them all)")
    return lines
