"""The comparison report: one self-contained HTML page with inline SVG plots.

:func:`render_report` turns the result of :func:`rpiaas.analysis.compare.compare_runs`
into a page that needs nothing else — no scripts, no fonts, no network: the
plots are SVG written here, the styles inline.  Plots: response and wait time
CDFs, the cluster's allocated and CPU utilisation (two plots) and power over
time, energy per node, and per-task response of each run against the
reference, and the Gantt chart of the reference and the first other run
(:mod:`.gantt`).  It says what the terminal says: where each run's figures come
from (measured, modelled from measured utilisation, modelled), ``modelled on
both sides`` where neither side was measured, the verdict of each task-level
comparison with its tolerance and effect size (Cohen's d), and, given live
runs, each run against the testbed's own spread.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from .gantt import gantt_svg
from .tables import format_value, summary_note, summary_sources

__all__ = ["render_report"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H = 640, 360
L, R, T, B = 70, 20, 20, 50  # margins
_MAX_BARS = 40
_PANELS = 12  # nodes with a panel of their own
PANEL = (420, 220)

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
td.source{text-align:left}tr.tolerance td{white-space:normal;text-align:left}
td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure.plot{margin:0;border:1px solid #ddd;padding:.4em;background:#fff}
figure.wide{flex-basis:100%}.panels{display:flex;flex-wrap:wrap;gap:.3em}
.panel-title{font-weight:bold}
figcaption{font-size:.85em;color:#444;max-width:640px}
.note{background:#fff4d6;padding:.4em .8em;border-left:4px solid #e0a800}
.agree{color:#1a7f37;font-weight:bold}.differ{color:#b42318;font-weight:bold}
.modelled{color:#6b5b00;font-style:italic}
.legend span{display:inline-block;margin-right:1em}
.swatch{display:inline-block;width:1em;height:.6em;margin-right:.3em}
svg text{font-size:11px;fill:#333}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e9 or abs(v) < 1e-2:
        return f"{v:.3g}"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:,.6g}"


class _Axes:
    """Linear axes from data ranges to the SVG box."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], y0: bool = False,
                 size: tuple[int, int] = (W, H)) -> None:
        self.w, self.h = size
        fx = [x for x in xs if math.isfinite(x)] or [0.0, 1.0]
        fy = [y for y in ys if math.isfinite(y)] or [0.0, 1.0]
        self.x0, self.x1 = min(fx), max(fx)
        self.y0, self.y1 = (min(0.0, min(fy)) if y0 else min(fy)), max(fy)
        if self.x1 <= self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        if self.y1 <= self.y0:
            self.y0, self.y1 = self.y0 - 0.5, self.y1 + 0.5
        pad = (self.y1 - self.y0) * 0.04
        self.y1 += pad
        if not y0:
            self.y0 -= pad

    def x(self, v: float) -> float:
        return L + (v - self.x0) / (self.x1 - self.x0) * (self.w - L - R)

    def y(self, v: float) -> float:
        return self.h - B - (v - self.y0) / (self.y1 - self.y0) * (self.h - T - B)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        out = [f'<rect x="{L}" y="{T}" width="{self.w - L - R}" height="{self.h - T - B}" fill="none" '
               'stroke="#999"/>']
        for v in _nice_ticks(self.x0, self.x1):
            px = self.x(v)
            out.append(f'<line x1="{px:.1f}" y1="{self.h - B}" x2="{px:.1f}" y2="{self.h - B + 4}" stroke="#999"/>'
                       f'<text x="{px:.1f}" y="{self.h - B + 16}" text-anchor="middle">{_label(v)}</text>')
        for v in _nice_ticks(self.y0, self.y1):
            py = self.y(v)
            out.append(f'<line x1="{L}" y1="{py:.1f}" x2="{self.w - R}" y2="{py:.1f}" stroke="#eee"/>'
                       f'<text x="{L - 6}" y="{py + 4:.1f}" text-anchor="end">{_label(v)}</text>')
        out.append(f'<text x="{(L + self.w - R) / 2}" y="{self.h - 12}" text-anchor="middle">{_e(xlabel)}</text>')
        out.append(f'<text transform="translate(16,{(T + self.h - B) / 2}) rotate(-90)" '
                   f'text-anchor="middle">{_e(ylabel)}</text>')
        return out


def _svg(name: str, body: list[str], title: str, size: tuple[int, int] = (W, H)) -> str:
    w, h = size
    return (f'<svg class="chart" data-plot="{_e(name)}" '
            f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">'
            + "".join(body) + "</svg>")


def _fin(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def line_plot(name: str, lines: Sequence[tuple[str, Sequence[Any], Sequence[Any]]], xlabel: str,
              ylabel: str, title: str, step: bool = False, size: tuple[int, int] = (W, H)) -> str:
    """An SVG line plot: one polyline per ``(label, xs, ys)``, ``None`` values skipped."""
    pts = [[(x, y) for x, y in zip(xs, ys, strict=False) if _fin(x) and _fin(y)] for _, xs, ys in lines]
    ax = _Axes([p[0] for ps in pts for p in ps], [p[1] for ps in pts for p in ps], y0=True, size=size)
    body = ax.frame(xlabel, ylabel)
    for i, ps in enumerate(pts):
        if not ps:
            continue
        coords = []
        prev_y: float | None = None
        for x, y in ps:
            if step and prev_y is not None:
                coords.append(f"{ax.x(x):.1f},{ax.y(prev_y):.1f}")
            coords.append(f"{ax.x(x):.1f},{ax.y(y):.1f}")
            prev_y = y
        body.append(f'<polyline class="series" data-label="{_e(lines[i][0])}" fill="none" '
                    f'stroke="{COLORS[i % len(COLORS)]}" stroke-width="1.6" points="{" ".join(coords)}"/>')
    if size != (W, H):  # a panel of small multiples: its title inside
        body.append(f'<text class="panel-title" x="{L}" y="{T - 6}">{_e(title)}</text>')
    return _svg(name, body, title, size)


def cdf_plot(name: str, samples: Sequence[tuple[str, Sequence[Any]]], xlabel: str, title: str) -> str:
    lines = []
    for label, q in samples:
        n = len(q)
        lines.append((label, list(q), [i / (n - 1) if n > 1 else 1.0 for i in range(n)]))
    return line_plot(name, lines, xlabel, "fraction of tasks", title, step=False)


def bar_plot(name: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[Any]]],
             ylabel: str, title: str) -> str:
    """Grouped bars: for each group (node) one bar per series (run)."""
    values = [v for _, vs in series for v in vs if _fin(v)]
    ax = _Axes([0.0, float(len(groups))], values or [0.0, 1.0], y0=True)
    body = [f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>']
    for v in _nice_ticks(ax.y0, ax.y1):
        py = ax.y(v)
        body.append(f'<line x1="{L}" y1="{py:.1f}" x2="{W - R}" y2="{py:.1f}" stroke="#eee"/>'
                    f'<text x="{L - 6}" y="{py + 4:.1f}" text-anchor="end">{_label(v)}</text>')
    body.append(f'<text transform="translate(16,{(T + H - B) / 2}) rotate(-90)" '
                f'text-anchor="middle">{_e(ylabel)}</text>')
    gw = (W - L - R) / max(1, len(groups))
    bw = gw * 0.8 / max(1, len(series))
    for g, gname in enumerate(groups):
        for s, (label, vs) in enumerate(series):
            val: Any = vs[g] if g < len(vs) else None
            if not _fin(val):
                continue
            x = L + g * gw + gw * 0.1 + s * bw
            y = ax.y(float(val))
            body.append(f'<rect class="bar" data-label="{_e(label)}" data-node="{_e(gname)}" '
                        f'x="{x:.1f}" y="{y:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                        f'height="{max(ax.y(0.0) - y, 0.0):.1f}" fill="{COLORS[s % len(COLORS)]}">'
                        f'<title>{_e(gname)} · {_e(label)}: {_label(float(val))}</title></rect>')
        if len(groups) <= 12:
            short = gname.split(".", 1)[0]
            body.append(f'<text x="{L + (g + 0.5) * gw:.1f}" y="{H - B + 16}" '
                        f'text-anchor="middle">{_e(short)}</text>')
    return _svg(name, body, title)


def scatter_plot(name: str, xs: Sequence[Any], ys: Sequence[Any], xlabel: str, ylabel: str,
                 title: str) -> str:
    pts = [(x, y) for x, y in zip(xs, ys, strict=False) if _fin(x) and _fin(y)]
    lo = min([min(x, y) for x, y in pts] or [0.0])
    hi = max([max(x, y) for x, y in pts] or [1.0])
    ax = _Axes([lo, hi], [lo, hi])
    body = ax.frame(xlabel, ylabel)
    body.append(f'<line class="diagonal" x1="{ax.x(lo):.1f}" y1="{ax.y(lo):.1f}" x2="{ax.x(hi):.1f}" '
                f'y2="{ax.y(hi):.1f}" stroke="#888" stroke-dasharray="4 3"/>')
    body.append('<g class="points" fill="#1f77b4" fill-opacity="0.45">'
                + "".join(f'<circle cx="{ax.x(x):.1f}" cy="{ax.y(y):.1f}" r="2"/>' for x, y in pts)
                + "</g>")
    return _svg(name, body, title)


def _node_panels(labels: Sequence[str], series: Sequence[dict[str, Any]], metric: str,
                 unit: str) -> str:
    names = list(dict.fromkeys(n for s in series for n in s))[:_PANELS]
    return "".join(line_plot(f"node-{metric}-{i}", [
        (label, s.get(name, {}).get("time_s", []), s.get(name, {}).get(metric, []))
        for label, s in zip(labels, series, strict=False)], "time (s)", unit, name, size=PANEL)
        for i, name in enumerate(names))


def _figure(name: str, svg: str, caption: str) -> str:
    return (f'<figure class="plot" id="plot-{_e(name)}">{svg}'
            f"<figcaption>{caption}</figcaption></figure>")


def _legend(labels: Sequence[str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i class="swatch" style="background:{COLORS[i % len(COLORS)]}"></i>'
        f"{chr(ord('A') + i)}: {_e(label)}</span>" for i, label in enumerate(labels)) + "</p>"


def _fmt(v: Any) -> str:
    return _e(format_value(v))


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def _summary_table(result: dict[str, Any]) -> str:
    pairs = result["pairs"]
    letters = [chr(ord("A") + i) for i in range(len(result["runs"]))]
    head = "<tr><th>metric</th><th>A</th>" + "".join(
        f"<th>{letters[p['b']]}</th><th>{letters[p['b']]}−A</th><th>{letters[p['b']]}/A−1</th>"
        for p in pairs) + ("<th>source</th><th>note</th>" if pairs else "") + "</tr>"
    rows = []
    for key in pairs[0]["summary"] if pairs else []:
        cells = [f"<td>{_e(key)}</td><td>{_fmt(pairs[0]['summary'][key]['a'])}</td>"]
        for p in pairs:
            s = p["summary"].get(key, {})
            cells.append(f"<td>{_fmt(s.get('b'))}</td><td>{_fmt(s.get('diff'))}</td><td>{_pct(s.get('rel'))}</td>")
        note = summary_note(result, key, letters)
        cells.append(f'<td class="source">{_e(summary_sources(result, key, letters))}</td>'
                     f'<td class="{"modelled" if note else ""}">{_e(note)}</td>')
        rows.append(f'<tr data-metric="{_e(key)}">' + "".join(cells) + "</tr>")
    return f'<table id="summary">{head}{"".join(rows)}</table>'


def _sources_table(runs: Sequence[dict[str, Any]], letters: Sequence[str]) -> str:
    keys = ("utilization", "cpu_utilization", "power_w", "energy_j", "boot_s", "switching")
    head = "<tr><th>run</th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"
    rows = "".join(f'<tr data-run="{letters[i]}"><td>{letters[i]}</td>' + "".join(
        f"<td>{_e((r.get('sources') or {}).get(k, '—'))}</td>" for k in keys) + "</tr>"
        for i, r in enumerate(runs))
    return (f'<table id="sources">{head}{rows}</table><p>Where each figure comes from: <i>measured</i> '
            "(a power meter, or the node's own CPU counters), <i>modelled-from-measured</i> (the node "
            "type's power model applied to measured CPU utilisation), <i>modelled</i> (the model alone, "
            "in simulation), <i>mixed</i> (nodes differ); <i>allocated</i>: the reserved share of the "
            "cores. Switching: <i>switched</i> (power drivers carried out PowerOn and PowerOff), "
            "<i>emulated</i> (no driver: the nodes stayed on, a boot lasted the model's boot_s), "
            "<i>modelled</i> (simulation). Where neither side of a figure was measured, the comparison "
            "says <i>modelled on both sides</i> instead of a verdict: a model that agrees with itself "
            "says nothing of the testbed.</p>")


def _spread_table(spread: dict[str, Any], runs: Sequence[dict[str, Any]], letters: Sequence[str]) -> str:
    letter = {r["label"]: letters[i] for i, r in enumerate(runs)}
    judged = spread["judged"]
    head = ("<tr><th>metric</th><th>live mean</th><th>live sd</th><th>live range</th><th>range/mean</th>"
            + "".join(f"<th>{letter.get(j, j)}</th><th>{letter.get(j, j)} vs mean</th><th>verdict</th>"
                      for j in judged) + "</tr>")
    rows = []
    for key, m in spread["metrics"].items():
        cells = [f"<td>{_e(key)}</td><td>{_fmt(m['live_mean'])}</td><td>{_fmt(m['live_sd'])}</td>"
                 f"<td>{_fmt(m['live_min'])}–{_fmt(m['live_max'])}</td><td>{_pct(m['live_spread_rel'])}</td>"]
        for j in judged:
            r = m["runs"].get(j, {})
            cls = "modelled" if r.get("agree") is None else "agree" if r["agree"] else "differ"
            cells.append(f"<td>{_fmt(r.get('value'))}</td><td>{_pct(r.get('error_rel'))}</td>"
                         f'<td class="{cls}">{_e(r.get("verdict") or "—")}</td>')
        rows.append(f'<tr data-metric="{_e(key)}">' + "".join(cells) + "</tr>")
    live = ", ".join(letter.get(x, x) for x in spread["live_runs"])
    return (f"<p>The live runs {_e(live)} replayed one scenario; how much they differ from each other is "
            "the testbed's own spread. A run agrees with the testbed where its figure lies inside the live "
            "runs' range or within 2 standard deviations of their mean (a makespan, wait or response also "
            "within the timing tolerance of their mean).</p>"
            f'<table id="spread">{head}{"".join(rows)}</table>')


def _verdict_cell(dist: dict[str, Any]) -> str:
    agree = dist.get("agree")
    if agree is None:
        return "<td>—</td>"
    return f'<td class="{"agree" if agree else "differ"}">{"agree" if agree else "differ"}</td>'


def _task_table(letter: str, t: dict[str, Any], tolerance: dict[str, Any]) -> str:
    rows = ["<tr><th></th><th>mean</th><th>mean |d|</th><th>p95 |d|</th><th>max |d|</th>"
            "<th>KS</th><th>KS p-value</th><th>Wasserstein</th><th>Cohen's d</th><th>verdict</th></tr>"]
    for what, key in (("wait (s)", "wait"), ("response (s)", "response")):
        d = t[f"{key}_diff_s"]
        dist = t["distributions"][f"{key}_s"]
        rows.append(f"<tr><td>{what}</td><td>{_fmt(d['mean'])}</td><td>{_fmt(d['mean_abs'])}</td>"
                    f"<td>{_fmt(d['p95_abs'])}</td><td>{_fmt(d['max_abs'])}</td>"
                    f"<td>{_fmt(dist['ks'])}</td><td>{_fmt(dist['ks_pvalue'])}</td>"
                    f"<td>{_fmt(dist['wasserstein_s'])}</td><td>{_fmt(dist.get('cohens_d'))}</td>"
                    f"{_verdict_cell(dist)}</tr>")
    rows.append(f'<tr class="tolerance"><td colspan="10">Verdict: a |mean difference| within the tolerance of '
                f"<b>{_fmt(tolerance.get('tolerance_s'))} s</b> ({_e(tolerance.get('source', 'none'))}) is "
                "agreement, whatever the KS test says: with many tasks it finds any offset, however small. "
                "Cohen's d is the difference of the means over their pooled standard deviation.</td></tr>")
    pl = t["placement"]
    agree = "—" if pl["agreement"] is None else f"{pl['agreement'] * 100:.1f} %"
    worst = "".join(f"<tr><td>{w['task_id']}</td><td>{_fmt(w['response_a_s'])}</td>"
                    f"<td>{_fmt(w['response_b_s'])}</td><td>{_fmt(w['diff_s'])}</td>"
                    f"<td>{_e(w['node_a'] or '—')}</td><td>{_e(w['node_b'] or '—')}</td></tr>"
                    for w in t["worst"])
    return (f'<table class="tasks" data-pair="{letter}">{"".join(rows)}</table>'
            f"<p>{t['matched']:,} tasks matched by id, {t['both_completed']:,} completed in both; "
            f"differences are {letter} − A. Same node: <b>{agree}</b> of {pl['both_placed']:,} "
            "tasks placed in both runs.</p>"
            f"<table class=\"worst\"><tr><th>task</th><th>A response s</th><th>{letter} response s</th>"
            f"<th>difference s</th><th>A node</th><th>{letter} node</th></tr>{worst}</table>")


def _by_run(runs: Sequence[dict[str, Any]], letters: Sequence[str], key: str) -> str:
    """Each run's source of ``key``, ``A modelled, B measured``."""
    return ", ".join(f"{letters[i]} {(r.get('sources') or {}).get(key, 'unknown')}" for i, r in enumerate(runs))


def render_report(result: dict[str, Any]) -> str:
    """The HTML page of a comparison (see :func:`rpiaas.analysis.compare.compare_runs`)."""
    runs = result["runs"]
    labels = [r["label"] for r in runs]
    letters = [chr(ord("A") + i) for i in range(len(runs))]
    plots = result["plots"]
    parts = [f"<h1>Comparison of {len(runs)} runs</h1>", _legend(labels), "<ul>"]
    for i, r in enumerate(runs):
        parts.append(f"<li>{letters[i]}: <code>{_e(r['path'])}</code> — {_e(r['mode'])}, "
                     f"scenario {_e(r['name'])}, policy {_e(r['policy'])}, seed {_e(r['seed'])}, "
                     f"{r['tasks']:,} tasks</li>")
    parts.append("</ul>")
    parts += ["<h2>Where the figures come from</h2>", _sources_table(runs, letters)]
    for p in result["pairs"]:
        if p["note"]:
            parts.append(f'<p class="note">A and {letters[p["b"]]}: {_e(p["note"])}; only the '
                         "summary metrics are compared.</p>")
    parts += ["<h2>Summary</h2>", _summary_table(result),
              "<p>mean_utilization is the allocated share of the cores (reserved / cores); "
              "mean_cpu_utilization the share busy on CPU (measured on the testbed, modelled in "
              "simulation).</p>"]
    if result.get("spread"):
        parts += ["<h2>Against the testbed's own spread</h2>", _spread_table(result["spread"], runs, letters)]
    figs = [
        _figure("response-cdf", cdf_plot("response-cdf", list(zip(labels, plots["response_quantiles"],
                                                                  strict=True)),
                                         "response time (s)", "response time CDF"),
                "Response time CDF: the fraction of completed tasks whose response (end − arrival) "
                "is at most x. Curves apart horizontally mean one run is systematically slower."),
        _figure("wait-cdf", cdf_plot("wait-cdf", list(zip(labels, plots["wait_quantiles"], strict=True)),
                                     "wait time (s)", "wait time CDF"),
                "Wait time CDF: time from arrival to start, for every task that started."),
        _figure("utilization", line_plot("utilization", [
            (lab, s["time_s"], s["utilization"]) for lab, s in zip(labels, plots["series"], strict=True)],
            "time (s)", "allocated share of the cores", "allocated utilisation over time"),
                "Allocated utilisation: the cluster's mean share of cores reserved by running tasks "
                "at each sample of nodes.csv (utilization), the same quantity in every run."),
        _figure("cpu-utilization", line_plot("cpu-utilization", [
            (lab, s["time_s"], s.get("cpu_utilization", [])) for lab, s in zip(labels, plots["series"], strict=True)],
            "time (s)", "CPU utilisation", "CPU utilisation over time"),
                "CPU utilisation: the cluster's mean share of cores busy on CPU (cpu_utilization): "
                + _e(_by_run(runs, letters, "cpu_utilization")) + "."),
        _figure("power", line_plot("power", [
            (lab, s["time_s"], s["power_w"]) for lab, s in zip(labels, plots["series"], strict=True)],
            "time (s)", "power (W)", "cluster power over time"),
                "The cluster's total power draw at each sample: "
                + _e(_by_run(runs, letters, "power_w")) + "."),
    ]
    for metric, unit, what, name in (
            ("utilization", "allocated share", "allocated utilisation", "node-utilization"),
            ("cpu_utilization", "CPU utilisation", "CPU utilisation", "node-cpu"),
            ("power_w", "power (W)", "power draw", "node-power")):
        panels = _node_panels(labels, plots.get("node_series", []), metric, unit)
        if panels:
            figs.append(f'<figure class="plot wide" id="plot-{name}"><div class="panels">{panels}</div>'
                        f"<figcaption>Each node's {what} over time, the runs overlaid (the first "
                        f"{_PANELS} nodes).</figcaption></figure>")
    nodes = list(dict.fromkeys(n for t in result["nodes"] for n in t))
    shown = nodes[:_MAX_BARS]
    more = f" (the first {_MAX_BARS} of {len(nodes):,} nodes)" if len(nodes) > _MAX_BARS else ""
    figs.append(_figure("energy", bar_plot("energy", shown, [
        (lab, [t.get(n, {}).get("energy_j") for n in shown])
        for lab, t in zip(labels, result["nodes"], strict=True)], "energy (J)", "energy per node"),
                        f"Energy per node over the whole run{more}, one bar per run: "
                        + _e(_by_run(runs, letters, "energy_j")) + "."))
    for sc in plots["scatter"]:
        a, b = letters[sc["a"]], letters[sc["b"]]
        figs.append(_figure(f"scatter-{b}", scatter_plot(
            f"scatter-{b}", sc["x"], sc["y"], f"{a}: response (s)", f"{b}: response (s)",
            f"response per task, {b} against {a}"),
            f"Each dot is a task: its response time in {a} (x) and in {b} (y); on the dashed "
            f"diagonal the two runs agree. At most 3,000 tasks, evenly spread by task id."))
    gantt = plots.get("gantt")
    if gantt:
        figs.append(f'<figure class="plot wide" id="plot-gantt">{gantt_svg(gantt[:2], width=1200)}'
                    "<figcaption>Gantt chart: per node a lane of the tasks it ran (bar height: "
                    "cores), the queue length beneath; A and the first other run on one time axis. "
                    "Past 60 nodes or 20,000 tasks, lanes group nodes and show their busy cores."
                    "</figcaption></figure>")
    parts += ["<h2>Plots</h2>", '<div class="plots">', *figs, "</div>"]
    for p in result["pairs"]:
        if p["tasks"] is not None:
            letter = letters[p["b"]]
            parts += [f"<h2>Task by task: A and {letter}</h2>",
                      _task_table(letter, p["tasks"], result.get("tolerance", {}))]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>rpiaas comparison</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
