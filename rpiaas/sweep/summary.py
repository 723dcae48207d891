"""A sweep's results: ``sweep.csv``, ``summary.csv``, ``summary.txt`` and plots.

- ``sweep.csv``: one row per run (grid coordinates and summary metrics);
- ``summary.csv``: per scenario, policy and parameter values, for each
  metric: runs, mean, standard deviation and the 95 % confidence interval
  of the mean (Student t, :func:`rpiaas.analysis.stats.mean_ci`);
- ``summary.txt``: a few metrics as a text table;
- ``plots/METRIC.png``: the means with their intervals as error bars
  (matplotlib, from the ``sweep`` extra).
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..analysis.stats import mean_ci
from .grid import ID_COLUMNS, slug

__all__ = ["aggregate", "format_table", "plot_summary", "summarize"]


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
            row = {"scenario": key[0], "policy": key[1], **dict(zip(params, key[2:], strict=True)),
                   "metric": metric, "n": len(values), "mean": mean, "sd": sd,
                   "ci95_low": mean - half, "ci95_high": mean + half, "ci95_half": half}
            out.append(row)
    return out


def aggregate(rows: Sequence[dict[str, Any]], out: str | Path, plots: bool = True) -> list[dict[str, Any]]:
    """Write ``sweep.csv``, ``summary.csv``, ``summary.txt`` and (with ``plots``) ``plots/*.png``."""
    out = Path(out)
    _write_csv(out / "sweep.csv", rows)
    summary = summarize(rows)
    _write_csv(out / "summary.csv", summary)
    (out / "summary.txt").write_text(format_table(summary) + "\n")
    if plots and rows:
        try:
            plot_summary(summary, out / "plots")
        except ImportError as e:  # matplotlib comes with the sweep extra
            print(f"no plots: {e} (pip install 'rpiaas[sweep]')", file=sys.stderr)
    return summary


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns: list[str] = []
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
        labels = list(dict.fromkeys(", ".join(f"{p[4:]}={r[p]}" for p in params) for r in rows))
        numeric = len(params) == 1 and all(_is_float(r[params[0]]) for r in rows)
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for series in dict.fromkeys((r["scenario"], r["policy"]) for r in rows):
            pts = [r for r in rows if (r["scenario"], r["policy"]) == series]
            xs = ([float(r[params[0]]) for r in pts] if numeric else
                  [labels.index(", ".join(f"{p[4:]}={r[p]}" for p in params)) for r in pts])
            order = sorted(range(len(pts)), key=lambda i: xs[i])
            yerr = [0.0 if math.isnan(pts[i]["ci95_half"]) else pts[i]["ci95_half"] for i in order]
            ax.errorbar([xs[i] for i in order], [pts[i]["mean"] for i in order], yerr=yerr,
                        marker="o", capsize=4, label=" · ".join(str(s) for s in series))
        if numeric:
            ax.set_xlabel(params[0][4:])
        else:
            ax.set_xticks(range(len(labels)), [lb or "(scenario as written)" for lb in labels],
                          rotation=20 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: mean and 95 % CI")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = directory / f"{slug(metric)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


TABLE_METRICS = ("mean_wait_s", "mean_response_s", "mean_bounded_slowdown", "mean_utilization",
                 "energy_j")


def format_table(summary: Sequence[dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """A text table: one line per group, ``mean ± half-width`` of a few metrics."""
    by_group: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in summary:
        key = tuple(v for k, v in r.items() if k in ("scenario", "policy") or k.startswith("set:"))
        by_group.setdefault(key, {})[r["metric"]] = r
    shown = [m for m in metrics if any(m in g for g in by_group.values())]
    params = [k for k in (summary[0] if summary else {}) if k.startswith("set:")]
    head = ["scenario", "policy", *(p[4:] for p in params), "n", *shown]
    lines = [head]
    for key, g in by_group.items():
        n = max(r["n"] for r in g.values())
        cells = [str(v) for v in key] + [str(n)]
        for m in shown:
            cell = g.get(m)
            cells.append("—" if cell is None else _pm(cell["mean"], cell["ci95_half"]))
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    text.insert(1, "  ".join("─" * w for w in widths))
    return "\n".join(text) + "\n(mean ± half-width of the 95 % confidence interval, Student t)"


def _pm(mean: float, half: float) -> str:
    def g(x: float) -> str:
        return f"{x:,.4g}" if abs(x) < 1e5 else f"{x:,.0f}"

    return g(mean) if math.isnan(half) else f"{g(mean)} ± {g(half)}"
