"""Gantt charts of runs: per node, a lane of the tasks it ran over time, the queue beneath.

:func:`gantt_model` reduces a run (:class:`rpiaas.rundir.reader.Run`) to what a
chart draws, as plain JSON (the comparison keeps it in ``compare.json``):

- ``"tasks"`` mode, up to ``max_lanes`` nodes and ``max_bars`` tasks: one lane
  per node, each task a bar spanning its start to its end, as tall as its
  cores (packed first-fit on the node's cores), coloured by task kind; a job that
  spanned nodes (``parts.csv``) is a bar in each of its nodes' lanes, at the same times;
- ``"busy"`` mode, beyond that: nodes grouped into at most ``max_lanes`` lanes,
  each lane the busy cores of its nodes (stacked by kind) in ``points`` time
  bins, as a fraction of the lane's cores — so 1,000 nodes and a million
  tasks still fit in one picture.

Beneath the lanes, the queue length (tasks arrived, not yet started) over time.
:func:`gantt_svg` draws models one above the other on one time axis as inline
SVG (no scripts, for the comparison report and ``rpiaas gantt -o x.svg``);
:func:`gantt_png` draws them with matplotlib (imported there, the ``sweep``
extra).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..model import PROFILES
from ..rundir.reader import Run

__all__ = ["KIND_COLORS", "MAX_BARS", "MAX_LANES", "gantt_model", "gantt_png", "gantt_svg"]

MAX_LANES = 60
MAX_BARS = 20_000
KIND_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f", "#bab0ac")
QUEUE_H = 70  # pixels of the queue panel under each run


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def _node_cores(run: Run) -> dict[str, int]:
    """Node name -> cores, from the node types of ``run.json`` (built-in or the scenario's)."""
    custom = ((run.record.get("scenario") or {}).get("cluster") or {}).get("node_types") or {}
    out: dict[str, int] = {}
    for name, type_name in run.node_types.items():
        spec = custom.get(type_name) if isinstance(custom, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("cores"), int):
            out[name] = spec["cores"]
        elif type_name in PROFILES:
            out[name] = PROFILES[type_name].cores
    return out


def _short(name: str) -> str:
    head, _, rest = name.partition(".")
    return f"{head}.{rest.split('.')[0]}" if rest else head


def gantt_model(run: Run, max_lanes: int = MAX_LANES, max_bars: int = MAX_BARS,
                points: int = 400) -> dict[str, Any]:
    """What a Gantt chart of ``run`` draws (see the module's docstring), as plain JSON."""
    declared = [n["node"] for n in run.record.get("nodes") or [] if isinstance(n, dict)
                and isinstance(n.get("node"), str)]
    names = list(dict.fromkeys([*declared, *(n for n in run.node_names if n)]))
    lane_of_name = {n: i for i, n in enumerate(names)}
    code_to_node = np.array([lane_of_name.get(n, -1) for n in run.node_names] + [-1], dtype=np.int64)
    node = code_to_node[run.node]  # -1 (never ran) indexes the trailing -1
    started = (node >= 0) & np.isfinite(run.start_s)
    times = np.concatenate([run.arrival_s, run.start_s, run.end_s])
    times = times[np.isfinite(times)]
    t0 = 0.0
    t1 = float(times.max()) if times.size else 1.0
    t1 = t1 if t1 > t0 else t0 + 1.0
    start = run.start_s[started]
    end = np.where(np.isfinite(run.end_s[started]), run.end_s[started], t1)
    cores = run.cores[started]
    kind = run.kind[started] if run.kind is not None else np.zeros(start.size, dtype=np.int64)
    kinds = list(run.kind_names) or ["cpu"]
    where = node[started]
    jobs = run.parts()
    if jobs:  # a job that spanned nodes: a bar in each of its nodes' lanes, at the same times
        where, start, end, cores, kind = _spread_jobs(jobs, run.task_id[started], lane_of_name,
                                                      where, start, end, cores, kind)
    caps = _node_cores(run)
    model: dict[str, Any] = {"label": run.label or str(run.path.name), "t0": t0, "t1": _r(t1),
                             "kinds": kinds, "nodes": len(names)}
    if len(names) <= max_lanes and start.size <= max_bars:
        model["mode"] = "tasks"
        model["lanes"], model["bars"] = _pack(names, caps, where, start, end, cores, kind)
    else:
        model["mode"] = "busy"
        model["lanes"], model["busy"] = _busy(names, caps, where, start, end, cores, kind,
                                              len(kinds), max_lanes, t0, t1, points)
    model["queue"] = _queue(run, t0, t1, points)
    return model


def _spread_jobs(jobs: dict[int, list[tuple[str, int]]], ids: Any, lane_of_name: dict[str, int],
                 where: Any, start: Any, end: Any, cores: Any, kind: Any) -> tuple[Any, Any, Any, Any, Any]:
    """The bars' columns with each job's one row replaced by one row per part (its node's
    lane, its cores, the job's start, end and kind)."""
    is_job = np.isin(ids, np.fromiter(jobs, dtype=np.int64))
    keep = ~is_job
    cols: list[list[Any]] = [[], [], [], [], []]
    for j in np.flatnonzero(is_job):
        for name, c in jobs[int(ids[j])]:
            for col, v in zip(cols, (lane_of_name.get(name, -1), start[j], end[j], c, kind[j]), strict=True):
                col.append(v)
    lane = np.array(cols[0], dtype=np.int64)
    known = lane >= 0
    return (np.concatenate([where[keep], lane[known]]),
            np.concatenate([start[keep], np.array(cols[1], dtype=np.float64)[known]]),
            np.concatenate([end[keep], np.array(cols[2], dtype=np.float64)[known]]),
            np.concatenate([cores[keep], np.array(cols[3], dtype=np.int64)[known]]),
            np.concatenate([kind[keep], np.array(cols[4], dtype=np.int64)[known]]))


def _pack(names: list[str], caps: dict[str, int], where: Any, start: Any, end: Any, cores: Any,
          kind: Any) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """One lane per node; each task on the lowest-numbered free cores of its node."""
    bars: list[list[float]] = []
    lanes = []
    order = np.lexsort((start, where))
    bounds = np.searchsorted(where[order], np.arange(len(names) + 1))
    for i, name in enumerate(names):
        free: list[float] = [-math.inf] * caps.get(name, 1)  # when each core becomes free
        for j in order[bounds[i]:bounds[i + 1]]:
            s, e, c = float(start[j]), float(end[j]), int(cores[j])
            idle = [o for o, f in enumerate(free) if f <= s][:c]
            if len(idle) < c:  # more than the node's cores (a type rpiaas does not know): widen
                idle += range(len(free), len(free) + c - len(idle))
                free.extend([-math.inf] * (idle[-1] + 1 - len(free)))
            for o in idle:
                free[o] = e
            # one bar per run of adjacent cores (a node's free cores need not be adjacent)
            first = prev = idle[0]
            for o in [*idle[1:], -2]:
                if o != prev + 1:
                    bars.append([i, _r(s), _r(e), first, prev + 1 - first, int(kind[j])])
                    first = o
                prev = o
        lanes.append({"name": name, "label": _short(name), "nodes": 1, "cores": len(free)})
    return lanes, bars


def _busy(names: list[str], caps: dict[str, int], where: Any, start: Any, end: Any, cores: Any,
          kind: Any, n_kinds: int, max_lanes: int, t0: float, t1: float,
          points: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Nodes grouped into lanes; per lane and kind the mean busy cores in each time bin."""
    per = max(1, math.ceil(len(names) / max_lanes))
    n_lanes = max(1, math.ceil(len(names) / per))
    lane = where // per
    edges = np.linspace(t0, t1, points + 1)
    width = edges[1] - edges[0]
    lanes = []
    for i in range(n_lanes):
        group = names[i * per:(i + 1) * per]
        label = _short(group[0]) if len(group) == 1 else f"{_short(group[0])} … ({len(group)})"
        lanes.append({"name": group[0], "label": label, "nodes": len(group),
                      "cores": sum(caps.get(n, 1) for n in group)})
    out = np.zeros((n_lanes, max(n_kinds, 1), points))
    key = lane * max(n_kinds, 1) + kind
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(n_lanes * max(n_kinds, 1) + 1))
    for k in range(n_lanes * max(n_kinds, 1)):
        idx = order[bounds[k]:bounds[k + 1]]
        if idx.size == 0:
            continue
        # busy core-seconds up to each edge: sum c * (T - s)^+ - sum c * (T - e)^+
        out[k // max(n_kinds, 1), k % max(n_kinds, 1)] = np.diff(
            _ramp(start[idx], cores[idx], edges) - _ramp(end[idx], cores[idx], edges)) / width
    cap = np.array([ln["cores"] for ln in lanes], dtype=np.float64)[:, None, None]
    frac = np.clip(out / cap, 0.0, 1.0)
    return lanes, {"edges": [_r(x) for x in edges],
                   "frac": [[[round(float(v), 3) for v in row] for row in lane_rows]
                            for lane_rows in frac]}


def _ramp(at: Any, weight: Any, edges: Any) -> Any:
    """``sum(weight * max(T - at, 0))`` at each edge ``T``."""
    o = np.argsort(at)
    a, w = at[o], weight[o].astype(np.float64)
    cw, cwa = np.concatenate([[0.0], np.cumsum(w)]), np.concatenate([[0.0], np.cumsum(w * a)])
    n = np.searchsorted(a, edges, side="right")
    return edges * cw[n] - cwa[n]


def _queue(run: Run, t0: float, t1: float, points: int) -> dict[str, list[float]]:
    """Tasks waiting (arrived, not started nor turned away) at ``points + 1`` instants."""
    leave = np.where(np.isfinite(run.start_s), run.start_s,
                     np.where(np.isfinite(run.end_s), run.end_s, np.inf))
    at = np.linspace(t0, t1, points + 1)
    arrived = np.searchsorted(np.sort(run.arrival_s[np.isfinite(run.arrival_s)]), at, side="right")
    left = np.searchsorted(np.sort(leave), at, side="right")
    return {"time_s": [_r(x) for x in at], "queued": [int(v) for v in arrived - left]}


# ---- SVG ---------------------------------------------------------------------------------------

def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _ticks(hi: float, n: int = 6) -> list[float]:
    step = 10 ** math.floor(math.log10(hi / n)) if hi > 0 else 1.0
    for m in (1, 2, 5, 10):
        if hi / (step * m) <= n:
            step *= m
            break
    return [i * step for i in range(int(hi / step) + 1)]


def gantt_svg(models: Sequence[dict[str, Any]], width: int = 1000, name: str = "gantt",
              standalone: bool = False) -> str:
    """The models one above the other on one time axis, as an ``<svg>`` element
    (``standalone``: with its namespace, as an ``.svg`` file needs).

    Each lane is a ``<g class="lane" data-node=... data-nodes=...>``; tasks are
    ``rect.task``, busy areas ``path.busy``, the queue a ``polyline.queue``.
    """
    left, right = 150, 20
    t1 = max(float(m["t1"]) for m in models) or 1.0
    plot_w = width - left - right

    def x(t: float) -> float:
        return left + plot_w * t / t1

    body: list[str] = []
    y = 10.0
    kinds = list(dict.fromkeys(k for m in models for k in m["kinds"]))
    for m in models:
        lanes = m["lanes"]
        lane_h = max(4.0, min(22.0, 480.0 / max(len(lanes), 1)))
        color = {i: KIND_COLORS[kinds.index(k) % len(KIND_COLORS)] for i, k in enumerate(m["kinds"])}
        body.append(f'<g class="run" data-label="{_e(m["label"])}" data-mode="{m["mode"]}">'
                    f'<text x="{left}" y="{y + 12:.1f}" font-weight="bold">{_e(m["label"])} — '
                    f'{m["nodes"]:,} nodes{"" if m["mode"] == "tasks" else ", busy cores per lane"}'
                    "</text>")
        y += 20
        top = y
        bars: dict[int, list[str]] = {i: [] for i in range(len(lanes))}
        for lane, s, e, o, c, k in m.get("bars", ()):
            cap = lanes[lane]["cores"] or 1
            ly = top + lane * lane_h
            bars[lane].append(
                f'<rect class="task" x="{x(s):.2f}" width="{max(x(e) - x(s), 0.5):.2f}" '
                f'y="{ly + (lane_h - 1) * (1 - (o + c) / cap):.2f}" '
                f'height="{(lane_h - 1) * c / cap:.2f}" fill="{color[k]}" stroke="#fff" '
                f'stroke-width="0.4"/>')
        busy = m.get("busy")
        for i, lane in enumerate(lanes):
            ly = top + i * lane_h
            body.append(f'<g class="lane" data-node="{_e(lane["name"])}" data-nodes="{lane["nodes"]}">'
                        f'<rect x="{left}" y="{ly:.2f}" width="{plot_w}" height="{lane_h - 1:.2f}" '
                        f'fill="{"#f4f4f4" if i % 2 else "#fafafa"}"/>')
            if lane_h >= 8 or i % max(1, round(10 / lane_h)) == 0:
                body.append(f'<text x="{left - 4}" y="{ly + min(lane_h, 12) - 2:.2f}" '
                            f'text-anchor="end" font-size="{min(11, max(lane_h, 7)):.0f}">'
                            f"{_e(lane['label'])}</text>")
            body += bars[i]
            if busy is not None:
                body += _busy_paths(busy, i, ly, lane_h - 1, x, color)
            body.append("</g>")
        y = top + len(lanes) * lane_h + 6
        body += _queue_svg(m["queue"], y, left, plot_w, x)
        y += QUEUE_H + 10
        body.append("</g>")
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999"/>')
    for t in _ticks(t1):
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y:.1f}" y2="{y + 4:.1f}" '
                    f'stroke="#999"/><text x="{x(t):.1f}" y="{y + 16:.1f}" text-anchor="middle">'
                    f"{t:,.10g}</text>")
    body.append(f'<text x="{left + plot_w / 2}" y="{y + 32:.1f}" text-anchor="middle">time (s)</text>')
    lx = left
    for i, k in enumerate(kinds):
        body.append(f'<rect x="{lx}" y="{y + 40:.1f}" width="12" height="8" '
                    f'fill="{KIND_COLORS[i % len(KIND_COLORS)]}"/>'
                    f'<text x="{lx + 16}" y="{y + 48:.1f}">{_e(k)}</text>')
        lx += 30 + 7 * len(k)
    h = y + 56
    xmlns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    return (f'<svg class="chart gantt" data-plot="{_e(name)}"{xmlns} '
            f'width="{width}" height="{h:.0f}" viewBox="0 0 {width} {h:.0f}" role="img" '
            f'aria-label="Gantt chart" font-family="sans-serif" font-size="11">'
            + "".join(body) + "</svg>")


def _busy_paths(busy: dict[str, Any], lane: int, ly: float, lh: float, x: Any,
                color: dict[int, str]) -> list[str]:
    """The kinds' busy fractions of one lane, stacked, as filled step areas."""
    edges = busy["edges"]
    base = [0.0] * (len(edges) - 1)
    out = []
    for k, frac in enumerate(busy["frac"][lane]):
        if not any(frac):
            continue
        top = [b + f for b, f in zip(base, frac, strict=True)]
        upper = " ".join(f"L{x(edges[j]):.1f},{ly + lh * (1 - v):.2f} L{x(edges[j + 1]):.1f},"
                         f"{ly + lh * (1 - v):.2f}" for j, v in enumerate(top))
        lower = " ".join(f"L{x(edges[j + 1]):.1f},{ly + lh * (1 - v):.2f} L{x(edges[j]):.1f},"
                         f"{ly + lh * (1 - v):.2f}" for j, v in reversed(list(enumerate(base))))
        out.append(f'<path class="busy" fill="{color[k]}" d="M{x(edges[0]):.1f},{ly + lh:.2f} '
                   f'{upper} {lower} Z"/>')
        base = top
    return out


def _queue_svg(q: dict[str, list[float]], y: float, left: float, plot_w: float, x: Any) -> list[str]:
    peak = max(max(q["queued"], default=0), 1)
    h = QUEUE_H - 14
    pts = " ".join(f"{x(t):.1f},{y + h * (1 - v / peak):.1f}"
                   for t, v in zip(q["time_s"], q["queued"], strict=True))
    return [f'<rect x="{left}" y="{y:.1f}" width="{plot_w}" height="{h}" fill="none" stroke="#ddd"/>',
            f'<polyline class="queue" fill="none" stroke="#555" points="{pts}"/>',
            f'<text x="{left - 4}" y="{y + 10:.1f}" text-anchor="end">queue (max {peak:,})</text>']


# ---- PNG (matplotlib) --------------------------------------------------------------------------

def gantt_png(models: Sequence[dict[str, Any]], out: str | Path, dpi: int = 110) -> Path:
    """The models one above the other on one time axis, as a PNG drawn by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    kinds = list(dict.fromkeys(k for m in models for k in m["kinds"]))
    ratios = []
    for m in models:
        ratios += [max(2.0, len(m["lanes"]) * 0.25), 0.8]
    fig, axes = plt.subplots(len(ratios), 1, sharex=True, figsize=(12, sum(ratios) * 0.7 + 1),
                             gridspec_kw={"height_ratios": ratios}, squeeze=False)
    for n, m in enumerate(models):
        ax, qax = axes[2 * n][0], axes[2 * n + 1][0]
        color = [KIND_COLORS[kinds.index(k) % len(KIND_COLORS)] for k in m["kinds"]]
        lanes = m["lanes"]
        for lane, s, e, o, c, k in m.get("bars", ()):
            cap = lanes[lane]["cores"] or 1
            ax.broken_barh([(s, max(e - s, 0.0))], (lane + 0.05 + 0.9 * o / cap, 0.9 * c / cap),
                           facecolors=color[k], linewidth=0)
        busy = m.get("busy")
        if busy is not None:
            edges = np.asarray(busy["edges"])
            for i in range(len(lanes)):
                base = np.zeros(edges.size - 1)
                for k, frac in enumerate(busy["frac"][i]):
                    f = np.asarray(frac)
                    if f.any():
                        ax.stairs(i + 0.05 + 0.9 * (base + f), edges, baseline=i + 0.05 + 0.9 * base,
                                  fill=True, color=color[k], linewidth=0)
                    base = base + f
        ax.set_ylim(len(lanes), 0)
        ax.set_yticks([i + 0.5 for i in range(len(lanes))],
                      [ln["label"] for ln in lanes], fontsize=max(4, min(8, 300 // max(len(lanes), 1))))
        ax.set_title(f"{m['label']} — {m['nodes']:,} nodes"
                     + ("" if m["mode"] == "tasks" else ", busy cores per lane"), fontsize=10)
        q = m["queue"]
        qax.step(q["time_s"], q["queued"], where="post", color="#555", linewidth=0.8)
        qax.set_ylim(0, max(max(q["queued"], default=0), 1) * 1.1)  # tasks: never below 0
        qax.set_ylabel("queue", fontsize=8)
    axes[-1][0].set_xlabel("time (s)")
    axes[-1][0].set_xlim(0, max(float(m["t1"]) for m in models))
    fig.legend(handles=[Patch(color=KIND_COLORS[i % len(KIND_COLORS)], label=k)
                        for i, k in enumerate(kinds)], loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)
    return path
