"""The master at lab scale: N emulated nodes (``rpiaas testbed up --emulated N``) on this machine.

Usage::

    .venv/bin/python benchmarks/emulated_scale.py                  # 100 then 1,000 nodes
    .venv/bin/python benchmarks/emulated_scale.py --nodes 1000     # one size
    .venv/bin/python benchmarks/emulated_scale.py --quick          # smoke run: 50 nodes, 300 tasks
    .venv/bin/python benchmarks/emulated_scale.py --json out.json

For each size N, an emulated testbed (:mod:`rpiaas.testbed.emulated`: the real
``rpiaas master`` polling N agent APIs that one ``rpiaas-agent-emulated``
process serves, each on its own loopback port with its own token, tasks as
timers) is started in a temporary directory, with its default poll interval
(1 s, and 2 s beyond 500 nodes; ``--poll-interval-s``).  Then:

- **time to online**: from the start of the testbed until the master counts
  every node online;
- **idle**: for ``--idle-s`` seconds, every second, the master's
  ``/api/v1/summary`` ``poll_age`` (seconds since each node's agent last
  answered, over the nodes): the median of its p50s, the worst of its p99s
  and of its maxima; the master's and the emulator's CPU (% of one core),
  RSS (the highest sample), and the share of the time their threads waited on
  a run queue, runnable but not running (``/proc/PID/task/*/schedstat``: what
  a machine busy with other work costs them);
- **run**: a live run (timescale 1, ``--task-kind sleep``) of ``--tasks``
  one-core tasks of 4-8 s (uniform), arriving every 1/``--rate`` s, placed by
  ``least_loaded``: its ``run.json``'s ``live.start_lag_s`` (p50, p95, max:
  how long after its decision each task started on its agent), the tasks
  completed, ``live.task_runner``, the poll ages while it ran, and the
  master's CPU and RSS over it;
- **node list**: the time of ``GET /api/v1/nodes?offset=0&limit=100`` (a
  dashboard page) and of the whole list.

Targets at 1,000 nodes (2 cores): every node online; poll age p99 <= 5 s;
start lag p95 <= 0.5 s with every task completed; master RSS <= 600 MB.
Nothing leaves loopback.  Figures go to ``docs/benchmarks.md`` by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml

from rpiaas.testbed.emulated import start_emulated_testbed

TARGET_POLL_AGE_P99_S = 5.0
TARGET_START_LAG_P95_S = 0.5
TARGET_MASTER_RSS_MB = 600.0


def get(url: str, token: str | None = None, body: Any = None, timeout_s: float = 30.0) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return json.loads(r.read())


class Sampler(threading.Thread):
    """Every 1.37 s: the summary's poll ages, and the CPU and RSS of the master and the emulator."""

    def __init__(self, url: str, procs: dict[str, psutil.Process]) -> None:
        super().__init__(daemon=True)
        self.url, self.procs = url, procs
        self.stop_flag = threading.Event()
        self.ages: list[dict[str, Any]] = []
        self.rss_mb: dict[str, list[float]] = {k: [] for k in procs}
        self.cpu0 = {k: self._cpu(p) for k, p in procs.items()}
        self.wait0 = {k: self._waited_s(p) for k, p in procs.items()}
        self.t0 = time.monotonic()

    @staticmethod
    def _waited_s(p: psutil.Process) -> float:
        """Seconds the process's threads have waited on a run queue (runnable, not running)."""
        total = 0
        for task in Path(f"/proc/{p.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
        return total / 1e9

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    def run(self) -> None:
        while not self.stop_flag.wait(1.37):  # not a multiple of the 1 s poll round
            for k, p in self.procs.items():
                self.rss_mb[k].append(p.memory_info().rss / 2**20)
            try:
                age = get(self.url + "/api/v1/summary", timeout_s=10.0).get("poll_age")
            except OSError:
                continue
            if age and age.get("p99_s") is not None:
                self.ages.append(age)

    def finish(self) -> dict[str, Any]:
        self.stop_flag.set()
        self.join()
        wall = time.monotonic() - self.t0
        out: dict[str, Any] = {"seconds": round(wall, 1), "age_samples": len(self.ages)}
        if self.ages:
            out["poll_age_p50_s"] = round(statistics.median(a["p50_s"] for a in self.ages), 3)
            out["poll_age_p99_s_worst"] = round(max(a["p99_s"] for a in self.ages), 3)
            out["poll_age_max_s_worst"] = round(max(a["max_s"] for a in self.ages), 3)
        for k, p in self.procs.items():
            out[f"{k}_cpu_percent_of_one_core"] = round(100 * (self._cpu(p) - self.cpu0[k]) / wall, 1)
            # runnable but not running: what a machine shared with other work costs it
            out[f"{k}_run_queue_wait_percent"] = round(100 * (self._waited_s(p) - self.wait0[k]) / wall, 1)
            out[f"{k}_rss_mb_max"] = round(max(self.rss_mb[k], default=p.memory_info().rss / 2**20), 1)
        return out


def scenario(cluster: dict[str, Any], tasks: int, rate: float) -> dict[str, Any]:
    return {"name": f"emulated-scale-{tasks}", "seed": 1, "cluster": cluster,
            "workload": {"generator": {
                "count": tasks, "arrival": {"interarrival_s": 1.0 / rate}, "cores": 1, "mem_mb": 64,
                "work_core_s": {"dist": "uniform", "low": 4, "high": 8}, "kind": "sleep"}},
            "policy": "least_loaded"}


def measure(n: int, tasks: int, rate: float, idle_s: float, folder: Path,
            poll_interval_s: float | None = None) -> dict[str, Any]:
    t0 = time.monotonic()
    tb = start_emulated_testbed(folder, n, timeout_s=120.0 + n / 10, poll_interval_s=poll_interval_s)
    online_s = time.monotonic() - t0
    try:
        procs = {"master": psutil.Process(tb.master.pid), "emulator": psutil.Process(tb.emulator.pid)}
        out: dict[str, Any] = {"nodes": n, "poll_interval_s": tb.summary()["poll_interval_s"],
                               "time_to_online_s": round(online_s, 2),
                               "load_average_1m_at_start": os.getloadavg()[0]}
        time.sleep(3.0)  # the first rounds after the last node came online
        idle = Sampler(tb.master_url, procs)
        idle.start()
        time.sleep(idle_s)
        out["idle"] = idle.finish()
        for label, query in (("page_100", "?offset=0&limit=100"), ("all", "")):
            t = time.monotonic()
            doc = get(tb.master_url + "/api/v1/nodes" + query)
            out[f"node_list_{label}_ms"] = round(1000 * (time.monotonic() - t), 1)
            out[f"node_list_{label}_nodes"] = len(doc["nodes"])
        cluster = yaml.safe_load((folder / "cluster.yaml").read_text())
        busy = Sampler(tb.master_url, procs)
        busy.start()
        token = tb.master_token
        run = get(tb.master_url + "/api/v1/runs", token,
                  {"scenario": scenario(cluster, tasks, rate), "timescale": 1, "task_kind": "sleep"})
        run_id = run["id"]
        deadline = time.monotonic() + tasks / rate + 300
        while run["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            run = get(f"{tb.master_url}/api/v1/runs/{run_id}", token)
        out["run"] = busy.finish()
        out["run"]["state"] = run["state"]
        out["run"]["load_average_1m_at_end"] = os.getloadavg()[0]
        record = json.loads((folder / "runs" / run_id / "result" / "run.json").read_text())
        live = record["live"]
        out["run"].update({"tasks": tasks, "rate_per_s": rate,
                           "completed": record["summary"].get("completed"),
                           "task_runner": live.get("task_runner"), "start_lag_s": live["start_lag_s"],
                           "makespan_s": record["summary"].get("makespan_s")})
        return out
    finally:
        tb.stop()


def missed(r: dict[str, Any]) -> list[str]:
    out = []
    age = r["idle"].get("poll_age_p99_s_worst")
    if age is None or age > TARGET_POLL_AGE_P99_S:
        out.append(f"{r['nodes']} nodes: idle poll age p99 {age} s > {TARGET_POLL_AGE_P99_S} s")
    lag = r["run"]["start_lag_s"].get("p95")
    if lag is None or lag > TARGET_START_LAG_P95_S:
        out.append(f"{r['nodes']} nodes: start lag p95 {lag} s > {TARGET_START_LAG_P95_S} s")
    if r["run"]["completed"] != r["run"]["tasks"]:
        out.append(f"{r['nodes']} nodes: {r['run']['completed']} of {r['run']['tasks']} tasks completed")
    rss = max(r["idle"]["master_rss_mb_max"], r["run"]["master_rss_mb_max"])
    if rss > TARGET_MASTER_RSS_MB:
        out.append(f"{r['nodes']} nodes: master RSS {rss} MB > {TARGET_MASTER_RSS_MB} MB")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--tasks", type=int, default=3000)
    p.add_argument("--rate", type=float, default=150.0, help="arrivals per second")
    p.add_argument("--idle-s", type=float, default=30.0)
    p.add_argument("--poll-interval-s", type=float,
                   help="default: the emulated testbed's (1 s, and 2 s beyond 500 nodes)")
    p.add_argument("--quick", action="store_true", help="50 nodes, 300 tasks, 10 s idle")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.tasks, args.idle_s = [50], 300, 10.0
    results = []
    for n in args.nodes:
        with tempfile.TemporaryDirectory(prefix=f"rpiaas-emulated-{n}-") as d:
            r = measure(n, args.tasks, args.rate, args.idle_s, Path(d), args.poll_interval_s)
        print(json.dumps(r, indent=1), flush=True)
        results.append(r)
    doc = {"machine": {"cpus": psutil.cpu_count(), "python": sys.version.split()[0],
                       "load_average_1m_at_end": os.getloadavg()[0]}, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    bad = [m for r in results for m in missed(r)]
    for m in bad:
        print(f"missed: {m}")
    return 1 if bad and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
