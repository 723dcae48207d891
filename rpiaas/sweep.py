"""Sweeps: a grid of runs (scenarios x policies x parameter values x seeds) and its statistics.

:func:`expand` turns the command line into :class:`RunSpec` objects, each
naming its own run directory under ``OUT/runs/``.  :func:`sweep` runs those
not yet done, on a local process pool (every core by default) or on a Dask
distributed cluster (``scheduler="tcp://host:8786"``), then aggregates:

- ``sweep.csv``: one row per run (grid coordinates and summary metrics);
- ``summary.csv``: per scenario, policy and parameter values, for each
  metric: runs, mean, standard deviation and the 95 % confidence interval
  of the mean (Student t);
- ``plots/METRIC.png``: the means with their intervals as error bars.

A run is done when its directory holds ``run.json``: the simulator moves a
run directory into place only when the run completes, so an interrupted
sweep started again redoes only the runs that had not finished, and a run
redone elsewhere after a worker died is still written exactly once.
``docs/sweep.md`` has the details.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inputs.source import InputError

__all__ = ["RunSpec", "SweepResult", "aggregate", "expand", "mean_ci", "parse_seeds", "run_one",
           "split_values", "sweep", "t_quantile"]

ID_COLUMNS = ("run", "scenario", "policy", "seed")


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a scenario file, a policy, ``--set`` overrides and a seed."""

    scenario: str  # absolute path, so that workers elsewhere find it on a shared filesystem
    policy: str | None
    seed: int | None  # None: the scenario's own
    overrides: tuple[tuple[str, str], ...] = ()  # (key, value as written), the swept ones
    fixed: tuple[tuple[str, str], ...] = ()  # single-valued --set pairs
    out: str = ""  # the run directory
    name: str = ""
    scenario_name: str = ""
    event_log: bool = True
    skip_bad_lines: bool = False

    def load(self) -> Any:
        from .scenario import load_scenario, parse_overrides

        pairs = [f"{k}={v}" for k, v in (*self.fixed, *self.overrides)]
        overrides = parse_overrides(pairs)
        if not self.event_log:
            overrides.append(("event_log", False))
        if self.skip_bad_lines and _has_trace(self.scenario):
            overrides.append(("workload.trace.skip_bad_lines", True))
        return load_scenario(self.scenario, overrides, seed=self.seed, policy=self.policy)


def _has_trace(path: str) -> bool:
    from .inputs.source import load_file

    data = load_file(path).data
    return isinstance(data, dict) and isinstance(data.get("workload"), dict) and "trace" in data["workload"]


@dataclass
class SweepResult:
    """What :func:`sweep` did: rows of ``sweep.csv``, the runs it ran now, the failures."""

    out: Path
    rows: list[dict[str, Any]]
    ran: int
    reused: int
    failed: dict[str, str] = field(default_factory=dict)  # run name -> error


# ---------------------------------------------------------------- the grid
def parse_seeds(text: str) -> list[int]:
    """``"1-30"``, ``"1,2,5-8"`` or ``"7"`` to a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise InputError(f"expected seeds such as 1-30 or 1,2,5-8, got {text!r}", "--seeds") from None
        if a < 0 or b < a:
            raise InputError(f"expected a range low-high with 0 <= low <= high, got {part.strip()!r}",
                             "--seeds")
        seeds.extend(range(a, b + 1))
    if len(set(seeds)) != len(seeds):
        raise InputError(f"a seed appears twice in {text!r}", "--seeds")
    return seeds


def split_values(text: str) -> list[str]:
    """``"0.5,1,{dist: uniform, low: 1, high: 4}"``: split on commas outside brackets and quotes."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_") or "_"


def _param_slug(overrides: Sequence[tuple[str, str]]) -> str:
    if not overrides:
        return ""
    text = ",".join(f"{k}={v}" for k, v in overrides)
    digest = hashlib.sha1(text.encode()).hexdigest()
    short = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides]
    slug = "-".join(_slug(p) for p in short)
    if len(slug) > 60 or len({k.rsplit(".", 1)[-1] for k, _ in overrides}) < len(overrides):
        return "p" + digest[:10]  # long or ambiguous: a stable hash
    if slug != "-".join(short):
        slug += "-" + digest[:6]  # characters were replaced: two values must not meet
    return slug


def expand(scenarios: Sequence[str | Path], policies: Sequence[str], seeds: Sequence[int] | None,
           sets: Sequence[str], out: str | Path, event_log: bool = True,
           skip_bad_lines: bool = False, notes: list[str] | None = None) -> list[RunSpec]:
    """The grid, in a fixed order; each point's scenario is validated once (an InputError if bad).

    ``sets`` are ``KEY=V1,V2,...`` strings: a key with one value applies to
    every run, a key with several is an axis of the grid.  No ``policies``:
    each scenario's own; no ``seeds``: each scenario's own seed.  ``notes``
    collects what trace scenarios skipped.
    """
    fixed: list[tuple[str, str]] = []
    axes: list[list[tuple[str, str]]] = []
    for item in sets:
        if "=" not in item:
            raise InputError(f"expected key.path=value[,value...], got {item!r}", "--set")
        key, _, text = item.partition("=")
        values = split_values(text)
        if len(values) == 1:
            fixed.append((key.strip(), values[0]))
        else:
            axes.append([(key.strip(), v) for v in values])
    runs_dir = Path(out).resolve() / "runs"
    specs: list[RunSpec] = []
    names: dict[str, RunSpec] = {}
    for file in scenarios:
        path = str(Path(file).resolve())
        for policy in ([*policies] if policies else [None]):
            for combo in itertools.product(*axes):
                probe = RunSpec(path, policy, None, tuple(combo), tuple(fixed),
                                event_log=event_log, skip_bad_lines=skip_bad_lines)
                sc = probe.load()
                report = getattr(sc.workload, "report", None)
                if notes is not None and report is not None:
                    note = f"{sc.name}: trace {sc.workload.options.path.name}: {report.describe()}"
                    if note not in notes:
                        notes.append(note)
                for seed in (list(seeds) if seeds is not None else [sc.seed]):
                    parts = [sc.name, sc.policy.name, _param_slug(combo), f"s{seed}"]
                    name = "-".join(p for p in parts if p)
                    spec = RunSpec(path, policy, seed, tuple(combo), tuple(fixed), str(runs_dir / name),
                                   name, sc.name, event_log, skip_bad_lines)
                    if name in names:
                        raise InputError(f"two runs of the grid would share the directory {name} "
                                         "(two scenario files with the same name?)", str(file))
                    names[name] = spec
                    specs.append(spec)
    return specs


# ---------------------------------------------------------------- one run
def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` unless its run directory is complete; its row of ``sweep.csv``.

    Runs in a pool process or on a Dask worker, so it is a plain top-level function.
    """
    out = Path(spec.out)
    if not (out / "run.json").exists():
        from .sim import simulate

        simulate(spec.load(), out)
    return _row(spec)


def _row(spec: RunSpec) -> dict[str, Any]:
    out = Path(spec.out)
    record = json.loads((out / "run.json").read_text())
    row: dict[str, Any] = {"run": spec.name, "scenario": spec.scenario_name,
                           "policy": record["policy"], "seed": record["seed"]}
    row.update({f"set:{k}": v for k, v in spec.overrides})
    row.update(record["summary"])
    try:
        row["wall_s"] = json.loads((out / "timing.json").read_text()).get("wall_s")
    except (OSError, ValueError):
        row["wall_s"] = None
    return row


# ---------------------------------------------------------------- running the grid
def sweep(specs: Sequence[RunSpec], out: str | Path, scheduler: str | None = None,
          workers: int | None = None, progress: bool = True, connect_timeout_s: float = 5.0,
          plots: bool = True) -> SweepResult:
    """Run the runs of ``specs`` not yet done, then write ``sweep.csv``, ``summary.csv`` and plots."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    todo = [s for s in specs if not (Path(s.out) / "run.json").exists()]
    rows: dict[str, dict[str, Any]] = {s.name: _row(s) for s in specs if s not in todo}
    failed: dict[str, str] = {}
    client = _client(scheduler, connect_timeout_s) if scheduler and todo else None
    bar = _bar(len(specs), len(rows), progress)
    try:
        if todo:
            outcomes = _dask(todo, client) if client is not None else _pool(todo, workers)
            for spec, row, error in outcomes:
                if error is None:
                    rows[spec.name] = row
                else:
                    failed[spec.name] = error
                    bar.write(f"run {spec.name} failed: {error}")
                bar.update(1)
    finally:
        bar.close()
    ordered = [rows[s.name] for s in specs if s.name in rows]
    _clean_partials(out / "runs", specs)
    aggregate(ordered, out, plots=plots)
    return SweepResult(out, ordered, len(todo) - len(failed), len(specs) - len(todo), failed)


Outcome = tuple[RunSpec, dict[str, Any], str | None]


def _pool(todo: Sequence[RunSpec], workers: int | None) -> Iterable[Outcome]:
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    pool = ProcessPoolExecutor(max_workers=n)
    try:
        futures: dict[Future[dict[str, Any]], RunSpec] = {pool.submit(run_one, s): s for s in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                exc = f.exception()
                yield futures[f], (f.result() if exc is None else {}), _error(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _client(address: str, timeout_s: float) -> Any:
    """A Dask client connected to ``address``, or an InputError within ``timeout_s``."""
    try:
        import distributed
    except ImportError as e:
        raise InputError(f"--scheduler needs the distributed package (pip install 'rpiaas[sweep]'): {e}",
                         "--scheduler") from None
    dd: Any = distributed  # untyped
    try:
        return dd.Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
                         f"({type(e).__name__}: {e})", "--scheduler") from None


def _dask(todo: Sequence[RunSpec], client: Any) -> Iterable[Outcome]:
    """Each run a Dask task; the scheduler reruns elsewhere what a dying worker held."""
    import distributed

    dd: Any = distributed
    try:
        futures = {client.submit(run_one, s, key=f"rpiaas-run-{s.name}", pure=False): s for s in todo}
        for f in dd.as_completed(list(futures), loop=client.loop):
            exc = f.exception()
            yield futures[f], (f.result() if exc is None else {}), _error(exc)
    finally:
        client.close()


def _error(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    return str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def write(self, text: str) -> None:
        print(text, file=sys.stderr)

    def close(self) -> None:
        pass


def _bar(total: int, done: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="run", desc="sweep", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def _clean_partials(runs: Path, specs: Sequence[RunSpec]) -> None:
    """Remove what attempts killed mid-run left behind, for runs now complete."""
    done = {Path(s.out).name for s in specs if (Path(s.out) / "run.json").exists()}
    for p in runs.glob(".*.partial-*"):
        if p.name[1:].rsplit(".partial-", 1)[0] in done:
            shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------- statistics
def _betai(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side only
        return 1.0 - _betai(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d, f = 1.0, 0.0, 1.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom.

    Bisection on the CDF, ``1 - I_{df/(df+t^2)}(df/2, 1/2) / 2`` for t > 0:
    exact to 1e-12, and no scipy import (0.7 s) at the end of every sweep.
    """
    lo, hi = 0.0, 1.0
    while 1.0 - 0.5 * _betai(df / 2, 0.5, df / (df + hi * hi)) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - 0.5 * _betai(df / 2, 0.5, df / (df + mid * mid)) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean, standard deviation and the half-width of the ``level`` confidence interval."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    if min(values) == max(values):  # exactly: no rounding noise in the interval
        return float(values[0]), 0.0, 0.0
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)


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
        path = directory / f"{_slug(metric)}.png"
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
