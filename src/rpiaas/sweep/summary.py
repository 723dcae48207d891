"""A sweep's results: ``sweep.csv``, ``summary.csv``, ``summary.txt`` and plots.

- ``sweep.csv``: one row per run (grid coordinates and summary metrics);
- ``summary.csv``: per scenario, policy and parameter values, for each
  metric: runs, mean, standard deviation and the 95 % confidence interval
  of the mean (Student t, :func:`rpiaas.sweep.ci.mean_ci`), clipped to
  the values the metric can take (:func:`metric_bounds`: no negative wait,
  no utilisation above 1), ``ci95_clipped`` saying when it was;
- ``summary.txt``: a few metrics as text tables no wider than 100 columns
  (the full table is ``summary.csv``), every number in one format;
- ``plots/METRIC.png``: the means with their intervals as error bars, a
  grouped bar chart per policy when no parameter is swept, the series set a
  little apart at each x (:func:`series_positions`) so that their error bars
  do not hide one another; a metric with one value in every run gets no plot
  (matplotlib, from the ``sweep`` extra);
- ``report.html``: the table and every plot on one page (:mod:`.report`).

``sweep.csv`` and ``summary.csv`` always have their header, even when no run
completed.
"""

from __future__ import annotations

import csv
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .ci import mean_ci
from .grid import ID_COLUMNS, slug
from .report import render_report, write_report

__all__ = ["STAT_COLUMNS", "aggregate", "format_interval", "format_number", "format_table", "is_constant",
           "metric_bounds", "plot_summary", "series_positions", "summarize"]

TEXT_WIDTH = 100
STAT_COLUMNS = ("metric", "n", "mean", "sd", "ci95_low", "ci95_high", "ci95_half", "ci95_clipped")
"""The columns of ``summary.csv`` after the group's (scenario, policy, ``set:KEY``...)."""
DODGE = 0.3
"""The share of the gap between two x values over which the series at one x are spread."""


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values a summary metric can take: ``(low, high)``.

    Times, energies, powers and counts are never negative; a bounded slowdown
    is at least 1; utilisation and shares lie in [0, 1] (a node type's too:
    ``by_node_type.T.mean_utilization``).
    """
    if metric.rsplit(".", 1)[-1] in ("mean_utilization", "same_state") or metric.endswith(("_ratio", "_share")):
        return 0.0, 1.0
    if metric == "mean_bounded_slowdown":
        return 1.0, math.inf
    return 0.0, math.inf


def _metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    skip = {*ID_COLUMNS}
    keys: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in skip and not k.startswith("set:") and k not in keys and (
                    isinstance(v, (int, float)) and not isinstance(v, bool)):
                keys.append(k)
    return keys


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group (scenario, policy, parameter values) and metric."""
    params = sorted({k for r in rows for k in r if k.startswith("set:")})
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["policy"], *(r.get(p) for p in params)), []).append(r)
    out = []
    for key, members in groups.items():
        for metric in _metrics(members):
            values = [float(m[metric]) for m in members if isinstance(m.get(metric), (int, float))]
            mean, sd, half = mean_ci(values)
            low_bound, high_bound = metric_bounds(metric)
            low, high = mean - half, mean + half
            clipped = low < low_bound or high > high_bound
            row = {"scenario": key[0], "policy": key[1], **dict(zip(params, key[2:], strict=True)),
                   "metric": metric, "n": len(values), "mean": mean, "sd": sd,
                   "ci95_low": max(low, low_bound), "ci95_high": min(high, high_bound),
                   "ci95_half": half, "ci95_clipped": clipped}
            out.append(row)
    return out


def aggregate(rows: Sequence[dict[str, Any]], out: str | Path, plots: bool = True,
              params: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Write ``sweep.csv``, ``summary.csv``, ``summary.txt``, ``report.html`` and (with ``plots``)
    ``plots/*.png``.

    ``params`` are the grid's swept keys (``set:KEY``): columns of both CSV files even when
    ``rows`` is empty, so that a sweep whose every run failed still writes their headers.
    """
    out = Path(out)
    params = list(dict.fromkeys([*params, *(k for r in rows for k in r if k.startswith("set:"))]))
    _write_csv(out / "sweep.csv", rows, [*ID_COLUMNS, *params])
    summary = summarize(rows)
    _write_csv(out / "summary.csv", summary, ["scenario", "policy", *params, *STAT_COLUMNS])
    (out / "summary.txt").write_text(format_table(summary) + "\n")
    written: list[Path] = []
    if plots and rows:
        try:
            written = plot_summary(summary, out / "plots")
        except ImportError as e:  # matplotlib comes with the sweep extra
            print(f"no plots: {e} (pip install 'rpiaas[sweep]')", file=sys.stderr)
    write_report(out / "report.html", _report(summary, written, f"sweep {out.name}", len(rows)))
    return summary


def _report(summary: Sequence[dict[str, Any]], plots: Sequence[Path], title: str, runs: int) -> str:
    """``report.html``: one row per metric, one column per group, the cells as in ``summary.txt``."""
    params = [k for k in (summary[0] if summary else {}) if k.startswith("set:")]
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in summary:
        groups.setdefault((r["scenario"], r["policy"], *(r[p] for p in params)), {})[r["metric"]] = r
    metrics = list(dict.fromkeys(r["metric"] for r in summary))
    keys = ["scenario", "policy", *(p[4:] for p in params)]
    head = [[key, *(str(g[i]) for g in groups)] for i, key in enumerate(keys)]
    head.append(["runs", *(str(max(r["n"] for r in g.values())) for g in groups.values())])
    body = [[m, *("—" if (c := g.get(m)) is None else format_interval(c["mean"], c["ci95_low"], c["ci95_high"])
                  for g in groups.values())] for m in metrics]
    note = (f"{runs} completed runs in {len(groups)} groups ({', '.join(keys)}). Each cell is the mean ± the "
            "half-width of its 95 % confidence interval (Student t), or the mean [low, high] where the "
            "interval is clipped to the metric's range; every figure is in summary.csv.")
    constant = [m for m in metrics if is_constant([r for r in summary if r["metric"] == m])]
    after = f"No plot for the metrics with one value in every run: {', '.join(constant)}." if constant else ""
    return render_report(title, note, head, body, plots, after)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], head: Sequence[str]) -> None:
    columns: list[str] = list(head)
    for r in rows:
        columns += [k for k in r if k not in columns]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                        for k, v in r.items()})
    tmp.replace(path)


def plot_summary(summary: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """One PNG per metric: the mean of each group with its 95 % interval as error bars.

    The x axis is the swept parameter when exactly one is swept (numeric values
    on a numeric axis), else the parameter combinations; one series per
    scenario and policy.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    params = [k for k in (summary[0] if summary else {}) if k.startswith("set:")]
    written = []
    for metric in dict.fromkeys(r["metric"] for r in summary):
        rows = [r for r in summary if r["metric"] == metric]
        if is_constant(rows):
            continue  # one value in every run (no task failed, every task completed): nothing to see
        if not params:
            written.append(_bars(plt, rows, metric, directory))
            continue
        labels = _labels(rows, params)
        numeric = len(params) == 1 and all(_is_float(r[params[0]]) for r in rows)
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for series, points in series_positions(rows, params).items():
            pts = [r for _, r in points]
            ax.errorbar([x for x, _ in points], [r["mean"] for r in pts], yerr=_yerr(pts), marker="o",
                        capsize=4, label=" · ".join(str(s) for s in series))
        if numeric:
            ax.set_xlabel(params[0][4:])
            values = sorted({float(r[params[0]]) for r in rows})
            if len(values) <= 12:  # ticks at the swept values, not at the series' dodged points
                ax.set_xticks(values, [f"{v:g}" for v in values])
        else:
            ax.set_xticks(range(len(labels)), [lb or "(scenario as written)" for lb in labels],
                          rotation=20 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: mean and 95 % CI{_clip_note(rows)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = directory / f"{slug(metric)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def is_constant(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether a metric's summary rows say it took one value in every run of the sweep."""
    means = {r["mean"] for r in rows if not math.isnan(r["mean"])}
    return len(means) <= 1 and all(math.isnan(r["sd"]) or r["sd"] == 0 for r in rows)


def _labels(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(_label(r, params) for r in rows))


def _label(row: dict[str, Any], params: Sequence[str]) -> str:
    return ", ".join(f"{p[4:]}={row[p]}" for p in params)


def series_positions(rows: Sequence[dict[str, Any]], params: Sequence[str]
                     ) -> dict[tuple[Any, Any], list[tuple[float, dict[str, Any]]]]:
    """Each series' (scenario, policy) points as ``(x, row)``, in x order, set apart at each x.

    x is the swept key's value when one numeric key is swept, else the index of
    the values' combination; the series at one x are spread evenly, centred on
    it, over :data:`DODGE` of the smallest gap between two x values, so that no
    error bar hides another and no point leaves its x's neighbourhood.
    """
    numeric = len(params) == 1 and all(_is_float(r[params[0]]) for r in rows)
    labels = _labels(rows, params)

    def x_of(r: dict[str, Any]) -> float:
        return float(r[params[0]]) if numeric else float(labels.index(_label(r, params)))

    xs = sorted({x_of(r) for r in rows})
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    if gaps:
        gap = min(gaps)
    else:  # one x: spread around it by a share of its size
        gap = abs(xs[0]) if xs and xs[0] != 0 else 1.0
    series = list(dict.fromkeys((r["scenario"], r["policy"]) for r in rows))
    step = DODGE * gap / len(series)
    out = {}
    for k, key in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * step
        pts = sorted(((x_of(r), r) for r in rows if (r["scenario"], r["policy"]) == key), key=lambda p: p[0])
        out[key] = [(x + offset, r) for x, r in pts]
    return out


def _yerr(rows: Sequence[dict[str, Any]]) -> list[list[float]]:
    """Error bars from the (clipped) interval: below and above each mean."""
    below = [0.0 if math.isnan(r["ci95_low"]) else r["mean"] - r["ci95_low"] for r in rows]
    above = [0.0 if math.isnan(r["ci95_high"]) else r["ci95_high"] - r["mean"] for r in rows]
    return [below, above]


def _clip_note(rows: Sequence[dict[str, Any]]) -> str:
    return ", clipped to the metric's range" if any(r["ci95_clipped"] for r in rows) else ""


def _bars(plt: Any, rows: Sequence[dict[str, Any]], metric: str, directory: Path) -> Path:
    """No parameter swept: one bar per policy, grouped by scenario, with its interval."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    width = 0.8 / len(policies)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for k, policy in enumerate(policies):
        pts = [next((r for r in rows if (r["scenario"], r["policy"]) == (sc, policy)), None)
               for sc in scenarios]
        xs = [i + (k - (len(policies) - 1) / 2) * width for i, p in enumerate(pts) if p is not None]
        have = [p for p in pts if p is not None]
        ax.bar(xs, [p["mean"] for p in have], width * 0.9, yerr=_yerr(have), capsize=4, label=policy)
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean and 95 % CI per policy{_clip_note(rows)}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = directory / f"{slug(metric)}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


TABLE_METRICS = ("mean_wait_s", "mean_response_s", "mean_bounded_slowdown", "mean_utilization",
                 "energy_j")


def format_table(summary: Sequence[dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS,
                 width: int = TEXT_WIDTH) -> str:
    """Text tables of ``mean ± half-width`` of a few metrics, one line per group.

    The group columns come first in every table; metrics follow as many as fit
    in ``width`` columns, the rest in further tables below.
    """
    by_group: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in summary:
        key = tuple(v for k, v in r.items() if k in ("scenario", "policy") or k.startswith("set:"))
        by_group.setdefault(key, {})[r["metric"]] = r
    shown = [m for m in metrics if any(m in g for g in by_group.values())]
    params = [k for k in (summary[0] if summary else {}) if k.startswith("set:")]
    keys = ["scenario", "policy", *(p[4:] for p in params), "n"]
    key_cells = [[str(v) for v in key] + [str(max(r["n"] for r in g.values()))]
                 for key, g in by_group.items()]
    columns = {m: [m] + ["—" if (c := g.get(m)) is None else
                         format_interval(c["mean"], c["ci95_low"], c["ci95_high"])
                         for g in by_group.values()] for m in shown}
    key_widths = [max(len(row[i]) for row in [keys, *key_cells]) for i in range(len(keys))]
    blocks: list[list[str]] = [[]]
    used = sum(key_widths) + 2 * len(key_widths)
    for m in shown:
        w = max(len(c) for c in columns[m]) + 2
        if blocks[-1] and used + w > width:
            blocks.append([])
            used = sum(key_widths) + 2 * len(key_widths)
        blocks[-1].append(m)
        used += w
    text: list[str] = []
    for block in blocks:
        head = keys + block
        rows = [head] + [cells + [columns[m][i + 1] for m in block] for i, cells in enumerate(key_cells)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i < len(keys) else c.rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("─" * w for w in widths))
        text += [*lines, ""]
    note = ("(mean ± half-width of the 95 % confidence interval, Student t; "
            "[low, high] where the interval is clipped to the metric's range; all metrics in "
            "summary.csv)")
    return "\n".join(text) + note


def format_number(x: float, digits: int = 4) -> str:
    """One format for every figure: ``digits`` significant digits, fixed point, thousands
    separated (``288,424``, ``14,860``, ``0.0004979``, ``3.142``), never an exponent."""
    if math.isnan(x):
        return "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(max(digits - 1 - magnitude, 0), 12)
    return f"{x:,.{decimals}f}"


def format_interval(mean: float, low: float, high: float) -> str:
    """``mean ± half`` with both in one format (the half to the mean's decimals), or
    ``mean [low, high]`` when the interval was clipped and so is not symmetric."""
    if math.isnan(low) or math.isnan(high):
        return format_number(mean)
    below, above = mean - low, high - mean
    if not math.isclose(below, above, rel_tol=1e-9, abs_tol=1e-12):
        return f"{format_number(mean)} [{format_number(low)}, {format_number(high)}]"
    if mean == 0 or above == 0:
        return f"{format_number(mean)} ± {format_number(above)}"
    decimals = min(max(3 - math.floor(math.log10(max(abs(mean), above))), 0), 12)
    return f"{mean:,.{decimals}f} ± {above:,.{decimals}f}"
