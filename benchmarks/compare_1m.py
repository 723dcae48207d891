"""Comparing two runs of a million tasks each: wall time and peak memory of ``rpiaas compare``.

Usage::

    .venv/bin/python benchmarks/compare_1m.py            # two runs of 1M tasks
    .venv/bin/python benchmarks/compare_1m.py --quick    # 100k tasks each (a smoke run)
    .venv/bin/python benchmarks/compare_1m.py --runs-dir /tmp/cmp1m   # keep (and reuse) the runs

The two runs are simulated first (same scenario and seed, best fit against
worst fit, ``--no-event-log``: 1,000 Pi 4Bs at 90 % load, node series every
hour) — that part is not timed.  Then ``rpiaas compare A B --out DIR`` runs in
a fresh process, and its wall time and peak RSS (``ru_maxrss`` of that
process alone) are printed: reading both ``tasks.csv`` and ``nodes.csv``,
matching the tasks, every statistic, ``compare.json`` and ``report.html``.
Targets: under a minute, under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TARGET_S, TARGET_MB = 60.0, 2048.0
NODES = 1000


def scenario(count: int) -> dict[str, object]:
    mean_work = 120.0
    mean_cores = 0.4 * 1 + 0.3 * 2 + 0.3 * 4
    rate = 0.9 * NODES * 4 / (mean_cores * mean_work)  # 90 % of the cores busy
    return {"name": f"compare-{count}", "seed": 1, "sample_interval_s": 3600, "event_log": False,
            "cluster": {"clusters": [{"domain": "c.test", "count": NODES,
                                      "type": "rpi4b"}]},
            "workload": {"generator": {"count": count, "arrival": {"rate_per_s": rate},
                                       "cores": {"dist": "choice", "values": [1, 2, 4],
                                                 "weights": [0.4, 0.3, 0.3]},
                                       "mem_mb": {"dist": "uniform", "low": 64, "high": 2048},
                                       "work_core_s": {"dist": "exponential", "mean": mean_work}}},
            "policy": "best_fit"}


def make_runs(count: int, where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"scenario-{count}.yaml"
    path.write_text(yaml.safe_dump(scenario(count), sort_keys=False))
    runs = []
    for policy in ("best_fit", "worst_fit"):
        out = where / f"{policy}-{count}"
        if not (out / "run.json").exists():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rpiaas", "run", str(path), "--policy", policy,
                            "--out", str(out), "--quiet"], check=True, stdout=subprocess.DEVNULL)
            print(f"simulated {out.name}: {time.perf_counter() - t0:.1f} s", flush=True)
        runs.append(out)
    return runs[0], runs[1]


_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from rpiaas.cli import main
code = main(["compare", sys.argv[1], sys.argv[2], "--out", sys.argv[3], "--quiet"])
wall = time.perf_counter() - t0
print(json.dumps({"code": code, "wall_s": wall,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(a: Path, b: Path, out: Path) -> dict[str, float]:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(a), str(b), str(out)], check=True,
                       capture_output=True, text=True)
    result: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"compare failed: {r.stderr}")
    return result


def _size_mb(run: Path) -> float:
    return sum(f.stat().st_size for f in run.iterdir()) / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100k tasks per run instead of 1M")
    p.add_argument("--count", type=int, help="tasks per run")
    p.add_argument("--runs-dir", help="where the two runs go (kept, and reused when present)")
    p.add_argument("--repeat", type=int, default=1, help="compare this many times, keep the best")
    args = p.parse_args()
    count = args.count or (100_000 if args.quick else 1_000_000)
    tmp = None
    if args.runs_dir:
        where = Path(args.runs_dir)
    else:
        tmp = tempfile.mkdtemp(prefix="rpiaas-compare-bench-")
        where = Path(tmp)
    try:
        a, b = make_runs(count, where)
        best: dict[str, float] | None = None
        for _ in range(max(1, args.repeat)):
            got = measure(a, b, where / "compare")
            if best is None or got["wall_s"] < best["wall_s"]:
                best = got
        assert best is not None
        report = json.loads((where / "compare" / "compare.json").read_text())
        t = report["pairs"][0]["tasks"]
        print(f"rpiaas compare, {count:,} tasks per run ({_size_mb(a):.0f} + {_size_mb(b):.0f} MB "
              f"of run files), {platform.python_implementation()} {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        print(f"  wall {best['wall_s']:.2f} s (target < {TARGET_S:.0f} s), peak RSS "
              f"{best['peak_rss_mb']:.0f} MB (target < {TARGET_MB:.0f} MB)")
        print(f"  matched {t['matched']:,} tasks; same node {t['placement']['agreement']:.3f}; "
              f"mean |response difference| {t['response_diff_s']['mean_abs']:.4g} s; "
              f"report.html {(where / 'compare' / 'report.html').stat().st_size / 1024:.0f} kB")
        print(f"  this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if best["wall_s"] > TARGET_S or best["peak_rss_mb"] > TARGET_MB:
            raise SystemExit("over target")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
