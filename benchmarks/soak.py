"""A soak: the master with 100 emulated nodes for N minutes; does its RSS or open files grow?

Usage::

    .venv/bin/python benchmarks/soak.py                    # 100 nodes, 30 minutes
    .venv/bin/python benchmarks/soak.py --minutes 5 --nodes 50
    .venv/bin/python benchmarks/soak.py --json out.json --csv samples.csv

An emulated testbed (``rpiaas testbed up --emulated N``: the real master, one
``rpiaas-agent-emulated`` process serving the nodes) runs for ``--minutes``,
poll interval 1 s.  Meanwhile, as a lab's master lives:

- every 2 s a dashboard's reads: ``/api/v1/summary``, a page of
  ``/api/v1/nodes`` and ``/api/v1/runs``;
- every ``--run-every-s`` (default 300 s) a live run of ``--run-tasks`` one-core
  ``sleep`` tasks of 1-3 s arriving at 20/s, placed by ``least_loaded``.

Every ``--sample-s`` (default 10 s) the master's RSS and open file
descriptors (``/proc/PID/fd``), and the emulator's RSS, are sampled.  The
first ``--warmup-min`` minutes (default a sixth of the soak) are warm-up.
After it, for each series: its least-squares slope (per hour), the mean of
its first and last fifths, and the verdict: it *grows* when the last fifth's
mean exceeds the first's by more than 5 % (RSS) or 5 descriptors (open
files) and the slope is positive.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml

from rpiaas.testbed.emulated import start_emulated_testbed


def get(url: str, token: str | None = None, body: Any = None, timeout_s: float = 30.0) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return json.loads(r.read())


def slope_per_h(ts: list[float], ys: list[float]) -> float:
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return 0.0 if den == 0 else 3600 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / den


def verdict(ts: list[float], ys: list[float], tolerance: float, relative: bool) -> dict[str, Any]:
    fifth = max(1, len(ys) // 5)
    first, last = statistics.fmean(ys[:fifth]), statistics.fmean(ys[-fifth:])
    slope = slope_per_h(ts, ys)
    allowed = tolerance * first if relative else tolerance
    return {"first_fifth_mean": round(first, 2), "last_fifth_mean": round(last, 2),
            "min": round(min(ys), 2), "max": round(max(ys), 2), "slope_per_h": round(slope, 2),
            "grows": bool(last - first > allowed and slope > 0)}


def scenario(cluster: dict[str, Any], tasks: int, k: int) -> dict[str, Any]:
    return {"name": f"soak-{k}", "seed": k, "cluster": cluster,
            "workload": {"generator": {
                "count": tasks, "arrival": {"interarrival_s": 0.05}, "cores": 1, "mem_mb": 64,
                "work_core_s": {"dist": "uniform", "low": 1, "high": 3}, "kind": "sleep"}},
            "policy": "least_loaded"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--warmup-min", type=float, help="default: a sixth of --minutes")
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--run-every-s", type=float, default=300.0, help="0: no runs")
    p.add_argument("--run-tasks", type=int, default=300)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--csv", metavar="FILE", help="every sample: t_s, master RSS MB, open files, emulator RSS MB")
    args = p.parse_args(argv)
    warmup_s = 60 * (args.warmup_min if args.warmup_min is not None else args.minutes / 6)
    samples: list[tuple[float, float, int, float]] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rpiaas-soak-") as d:
        folder = Path(d)
        tb = start_emulated_testbed(folder, args.nodes, timeout_s=120.0)
        try:
            master, emulator = psutil.Process(tb.master.pid), psutil.Process(tb.emulator.pid)
            cluster = yaml.safe_load((folder / "cluster.yaml").read_text())
            token = tb.master_token
            t0 = time.monotonic()
            end = t0 + 60 * args.minutes
            next_sample = next_read = t0
            next_run = t0 + (args.run_every_s if args.run_every_s > 0 else float("inf"))
            cpu0 = sum(master.cpu_times()[:2])
            while (now := time.monotonic()) < end:
                if now >= next_sample:
                    samples.append((now - t0, master.memory_info().rss / 2**20, master.num_fds(),
                                    emulator.memory_info().rss / 2**20))
                    next_sample += args.sample_s
                if now >= next_read:
                    for path in ("/api/v1/summary", "/api/v1/nodes?offset=0&limit=100", "/api/v1/runs"):
                        get(tb.master_url + path)
                    next_read += 2.0
                if now >= next_run:
                    run = get(tb.master_url + "/api/v1/runs", token,
                              {"scenario": scenario(cluster, args.run_tasks, len(runs) + 1),
                               "timescale": 1, "task_kind": "sleep"})
                    runs.append({"id": run["id"], "at_s": round(now - t0, 1)})
                    next_run += args.run_every_s
                time.sleep(0.2)
            cpu_pct = 100 * (sum(master.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
            for r in runs:
                r["state"] = get(f"{tb.master_url}/api/v1/runs/{r['id']}", token)["state"]
        finally:
            tb.stop()
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("t_s,master_rss_mb,master_open_files,emulator_rss_mb\n")
            f.writelines(f"{t:.1f},{r:.2f},{n},{e:.2f}\n" for t, r, n, e in samples)
    after = [s for s in samples if s[0] >= warmup_s]
    ts = [s[0] for s in after]
    out = {"nodes": args.nodes, "minutes": args.minutes, "warmup_min": round(warmup_s / 60, 2),
           "samples": len(samples), "runs": runs,
           "master_cpu_percent_of_one_core": round(cpu_pct, 1),
           "master_rss_mb": verdict(ts, [s[1] for s in after], 0.05, relative=True),
           "master_open_files": verdict(ts, [float(s[2]) for s in after], 5, relative=False),
           "emulator_rss_mb": verdict(ts, [s[3] for s in after], 0.05, relative=True),
           "warmup": {"master_rss_mb_first": round(samples[0][1], 1) if samples else None,
                      "master_open_files_first": samples[0][2] if samples else None}}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 1 if out["master_rss_mb"]["grows"] or out["master_open_files"]["grows"] else 0


if __name__ == "__main__":
    sys.exit(main())
