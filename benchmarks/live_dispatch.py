"""The master starting short tasks on 100 agents in live mode: starts per second, start latency.

Usage::

    .venv/bin/python benchmarks/live_dispatch.py                # 100 agents, 2,000 tasks at 100, 200, 400/s
    .venv/bin/python benchmarks/live_dispatch.py --quick        # smoke run: 10 agents, 200 tasks at 50/s
    .venv/bin/python benchmarks/live_dispatch.py --rates 200 --tasks 4000
    .venv/bin/python benchmarks/live_dispatch.py --check        # exit 1 when a target is missed
    .venv/bin/python benchmarks/live_dispatch.py --json out.json

One child process (this script with ``--serve-agents N``) serves ``N``
``rpiaas_agent`` apps, one per loopback port, in one event loop: each app is a
node of its own, with its own task capacity (``cores``, ``mem_mb``) and its
own token (derived from the master's node secret).  Each task still runs as the agent's worker process.
The real ``rpiaas master`` runs as a second process, with the ``N`` nodes
(a node type ``bench`` of the agents' cores and memory), ``poll_interval_s: 1``,
its token, the node secret and a ``runs_dir`` in a temporary directory.  Nothing leaves
loopback.

For each arrival rate ``R`` of ``--rates``, a scenario of ``--tasks`` tasks
arriving every ``1/R`` s (1 core, 16 MB, 0.2 s of ``sleep`` each, placed
``round_robin``) goes to ``POST /api/v1/runs`` (timescale 1, task kind
``sleep``) and is followed to its end.  Then, from the run directory:

- the decision time of each task: the control plane's last ``start`` action
  for it (``result/events.jsonl``, scenario seconds: the time of the event
  that led to it, the arrival for a task started at once);
- its running time: the start the agent measured (the journal's ``started``
  records, scenario seconds);
- latency = running - decision: p50, p99 and max in ms, split at the time the
  agent received ``POST /tasks`` (``submitted_s`` of the agent's task
  document) into the master's part and the agent's;
- starts/s achieved = tasks started / (last start - first start);
- tasks completed (``result/tasks.csv``), and the times the master saw a
  node go offline (journal ``down`` events: a poll of ``/info`` late by more
  than the 1 s poll timeout loses the node's tasks);
- CPU of the master, of the agent server and of the task workers it reaped
  (psutil, from the run's start to its end), in % of one core.

A rate is sustained when at least 95 % of it is achieved and the p99 latency
stays under ``MAX_SUSTAINED_P99_MS``.  Targets: a sustained rate of at least
200 starts/s, and a p50 latency of at most 20 ms at 200/s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from master_poll import cpu_s, fail, free_port, master_command, start, stop, wait_online, wait_ports

TARGET_STARTS_PER_S = 200.0
TARGET_P50_MS = 20.0
MAX_SUSTAINED_P99_MS = 250.0
MIN_ACHIEVED_SHARE = 0.95
DOMAIN = "bench.rpiaas.test"
NODE_CORES, NODE_MEM_MB = 2, 1024
TASK_RUNTIME_S = 0.2
WORKERS = ("python", "exec")
SLEEP = shutil.which("sleep") or "/bin/sleep"
MB = 1024 * 1024


# ---------------------------------------------------------------- the agent server (child)
async def _serve_agents(count: int, port_file: Path, token_file: Path, dump_file: Path,
                        worker: str) -> None:
    from aiohttp import web
    from rpiaas_agent import Config, create_app
    from rpiaas_agent.keys import TASKS
    from rpiaas_agent.tasks import TaskManager

    from rpiaas.auth import node_token

    if worker == "exec":
        # /bin/sleep instead of the Python worker: what is left is the master and the
        # agent's HTTP handling, without ~40 ms of CPU for each worker's interpreter
        TaskManager._command = lambda self, task: [SLEEP, repr(task.spec.duration_s)]  # type: ignore[method-assign]

    folder = port_file.parent
    sysfs = folder / "sysfs-empty"  # no thermal zones: the temperature is None, as off a Pi
    work = folder / "work"
    sysfs.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    secret = token_file.read_text().strip()  # the node secret: each agent gets its node's token
    runners: list[web.AppRunner] = []
    try:
        for i in range(1, count + 1):
            name = f"node{i}.{DOMAIN}"
            config = Config(host="127.0.0.1", port=0, name=name, token=node_token(secret, name),
                            sysfs_root=str(sysfs), vcgencmd="", disk_path=str(folder),
                            cores=NODE_CORES, mem_mb=NODE_MEM_MB, work_dir=str(work),
                            max_finished_tasks=100_000)
            runner = web.AppRunner(create_app(config), access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            if i == 1:  # the speed is measured once per process: let the first app do it alone
                while runner.app[TASKS].kernel_ops_per_s is None:
                    await asyncio.sleep(0.05)
        ports = [int(r.addresses[0][1]) for r in runners]
        part = port_file.with_suffix(".part")  # renamed whole: the parent never reads half a list
        part.write_text("".join(f"{p}\n" for p in ports))
        part.rename(port_file)
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        await stop_event.wait()
        lines = [json.dumps(t.document()) + "\n" for r in runners for t in r.app[TASKS].tasks()]
        dump_file.write_text("".join(lines))
    finally:
        for runner in runners:
            await runner.cleanup()


# ---------------------------------------------------------------- files and requests
def cluster_doc(agents: int) -> dict[str, Any]:
    return {"node_types": {"bench": {"base": "rpi4b", "cores": NODE_CORES, "mem_mb": NODE_MEM_MB}},
            "clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": agents, "type": "bench"}]}


def write_master_config(folder: Path, ports: list[int], listen_port: int) -> Path:
    agents = "".join(f'  node{i}.{DOMAIN}: "127.0.0.1:{p}"\n' for i, p in enumerate(ports, 1))
    (folder / "cluster.json").write_text(json.dumps(cluster_doc(len(ports))) + "\n")
    path = folder / "master.yaml"
    path.write_text(
        "cluster: cluster.json\n"
        "poll_interval_s: 1\n"
        "store: history.db\n"
        "token_file: master-token\n"
        "node_secret_file: node-secret\n"
        "runs_dir: runs\n"
        f"agents:\n{agents}"
        f"listen: 127.0.0.1:{listen_port}\n")
    return path


def scenario(agents: int, tasks: int, rate: float) -> dict[str, Any]:
    return {"name": f"live-dispatch-{rate:g}", "seed": 1, "cluster": cluster_doc(agents),
            "workload": {"generator": {
                "count": tasks, "arrival": {"interarrival_s": 1.0 / rate}, "cores": 1,
                "mem_mb": 16, "work_core_s": TASK_RUNTIME_S, "kind": "sleep"}},
            "policy": "round_robin"}


def call(port: int, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        doc = json.loads(r.read())
    assert isinstance(doc, dict)
    return doc


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---------------------------------------------------------------- one run
def one_run(port: int, token: str, runs_dir: Path, agents: int, tasks: int, rate: float,
            master: psutil.Process, server: psutil.Process, timeout_s: float) -> dict[str, Any]:
    m0, a0 = cpu_s(master.cpu_times()), cpu_s(server.cpu_times())
    w0 = server.cpu_times()
    t0 = time.monotonic()
    run = call(port, "POST", "/api/v1/runs", token,
               {"scenario": scenario(agents, tasks, rate), "timescale": 1, "task_kind": "sleep"})
    run_id = run["id"]
    while run["state"] == "running":
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"run {run_id} not done after {timeout_s:g} s: {run}")
        time.sleep(0.1)
        run = call(port, "GET", f"/api/v1/runs/{run_id}", token)
    wall = time.monotonic() - t0
    m1, a1 = cpu_s(master.cpu_times()), cpu_s(server.cpu_times())
    w1 = server.cpu_times()
    if run["state"] != "completed":
        raise SystemExit(f"run {run_id} ended {run['state']}: {run.get('error')}")
    directory = runs_dir / run_id
    journal = [json.loads(line) for line in (directory / "journal.jsonl").read_text().splitlines()]
    started = {int(r["started"]): (float(r["t"]), str(r["agent_id"]))
               for r in journal if "started" in r}
    reasons = collections.Counter(
        re.sub(r"\d+(\.\d+)*", "N", str(e.get("reason", "")))[:120]
        for rec in journal for e in rec.get("ev", ()) if e.get("e") == "fail")
    decided: dict[int, float] = {}
    with open(directory / "result" / "events.jsonl") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("act") == "start":
                decided[int(ev["task"])] = float(ev["t"])
    with open(directory / "result" / "tasks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    states = [row["state"] for row in rows]
    queued = sum(1 for row in rows if int(row["task_id"]) in decided
                 and decided[int(row["task_id"])] > float(row["arrival_s"]))
    workers = (w1.children_user + w1.children_system) - (w0.children_user + w0.children_system)
    return {"rate_per_s": rate, "tasks": tasks, "run": run_id, "t0": float(journal[0]["t0"]),
            "wall_s": round(wall, 2), "completed": states.count("completed"),
            "not_completed": len(states) - states.count("completed"), "queued_first": queued,
            "states": dict(collections.Counter(states)),
            "failures": dict(reasons.most_common(5)),
            "node_down_events": sum(1 for rec in journal for e in rec.get("ev", ())
                                    if e.get("e") == "down"),
            "decided": decided, "started": started,
            "master_cpu_percent_of_one_core": round(100 * (m1 - m0) / wall, 1),
            "agent_server_cpu_percent_of_one_core": round(100 * (a1 - a0) / wall, 1),
            "workers_cpu_percent_of_one_core": round(100 * workers / wall, 1)}


def figures(r: dict[str, Any], submitted: dict[str, float]) -> dict[str, Any]:
    """Latencies and the rate achieved; drops the per-task maps from ``r``."""
    decided, started = r.pop("decided"), r.pop("started")
    t0 = r.pop("t0")
    total, master_part, agent_part = [], [], []
    for task, (at, agent_id) in started.items():
        if task not in decided:
            continue
        total.append(at - decided[task])
        if agent_id in submitted:
            got = submitted[agent_id] - t0  # timescale 1: scenario seconds are wall seconds
            master_part.append(got - decided[task])
            agent_part.append(at - got)
    starts = sorted(at for at, _ in started.values())
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    achieved = (len(starts) - 1) / span if span > 0 else 0.0
    ms = {name: {"p50": round(1000 * pct(v, 0.5), 2), "p99": round(1000 * pct(v, 0.99), 2),
                 "max": round(1000 * max(v), 2), "mean": round(1000 * statistics.fmean(v), 2)}
          for name, v in (("latency", total), ("master_part", master_part),
                          ("agent_part", agent_part)) if v}
    lat = ms.get("latency", {"p50": None, "p99": None, "max": None, "mean": None})
    r.update({"started": len(starts), "starts_per_s": round(achieved, 1),
              "latency_p50_ms": lat["p50"], "latency_p99_ms": lat["p99"],
              "latency_max_ms": lat["max"], "latency_mean_ms": lat["mean"],
              "master_part_ms": ms.get("master_part"), "agent_part_ms": ms.get("agent_part"),
              "p50_ratio_to_target": None if lat["p50"] is None
              else round(lat["p50"] / TARGET_P50_MS, 2)})
    r["sustained"] = bool(achieved >= MIN_ACHIEVED_SHARE * r["rate_per_s"] and lat["p99"] is not None
                          and lat["p99"] <= MAX_SUSTAINED_P99_MS and r["not_completed"] == 0)
    return r


# ---------------------------------------------------------------- the benchmark
def measure(worker: str, agents: int, tasks: int, rates: list[float], timeout_s: float
            ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rpiaas-live-dispatch-") as tmp:
        folder = Path(tmp)
        port_file, dump_file = folder / "agent-ports.txt", folder / "agent-tasks.jsonl"
        agent_log, master_log = folder / "agents.log", folder / "master.log"
        token, node_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        for name, text in (("master-token", token), ("node-secret", node_secret)):
            (folder / name).write_text(text + "\n")
            os.chmod(folder / name, 0o600)
        server = start([sys.executable, str(Path(__file__).resolve()), "--serve-agents",
                        str(agents), "--port-file", str(port_file), "--token-file",
                        str(folder / "node-secret"), "--dump-file", str(dump_file),
                        "--worker", worker],
                       agent_log, folder)
        master: subprocess.Popen[bytes] | None = None
        try:
            ports = wait_ports(server, port_file, agent_log, timeout_s=60.0)
            port = free_port()
            config = write_master_config(folder, ports, port)
            master = start([*master_command(), "master", str(config)], master_log, folder)
            online_after_s = wait_online(master, port, agents, master_log)
            mproc, aproc = psutil.Process(master.pid), psutil.Process(server.pid)
            runs = []
            for rate in rates:
                try:
                    runs.append(one_run(port, token, folder / "runs", agents, tasks, rate,
                                        mproc, aproc, timeout_s))
                except OSError as e:
                    raise fail(f"the master's API failed: {e}", master_log) from None
            master_rss = mproc.memory_info().rss
            stop(master)
            if stop(server) != 0 or not dump_file.exists():
                raise fail("the agent server did not write its tasks at exit", agent_log)
        finally:
            if master is not None:
                stop(master)
            stop(server)
        submitted = {}
        for line in dump_file.read_text().splitlines():
            doc = json.loads(line)
            submitted[doc["id"]] = float(doc["submitted_s"])
    rows = [figures(r, submitted) for r in runs]
    return {"worker": worker, "agents": agents, "tasks": tasks, "node_cores": NODE_CORES,
            "node_mem_mb": NODE_MEM_MB, "task_runtime_s": TASK_RUNTIME_S,
            "online_after_s": round(online_after_s, 2), "master_rss_mb": round(master_rss / MB, 1),
            "sustained_starts_per_s": max((x["starts_per_s"] for x in rows if x["sustained"]),
                                          default=0.0),
            "runs": rows}


def missed_targets(r: dict[str, Any]) -> list[str]:
    missed = []
    runs = r["runs"]
    best = r["sustained_starts_per_s"]
    if best < TARGET_STARTS_PER_S:
        missed.append(f"sustained {best:g} starts/s < {TARGET_STARTS_PER_S:g}")
    at = [x for x in runs if x["rate_per_s"] >= TARGET_STARTS_PER_S]
    row = min(at, key=lambda x: x["rate_per_s"]) if at else max(runs, key=lambda x: x["rate_per_s"])
    if row["latency_p50_ms"] is None or row["latency_p50_ms"] > TARGET_P50_MS:
        missed.append(f"p50 {row['latency_p50_ms']} ms > {TARGET_P50_MS:g} ms at "
                      f"{row['rate_per_s']:g}/s")
    failed = sum(x["not_completed"] for x in runs)
    if failed:
        missed.append(f"{failed} tasks not completed")
    return missed


def print_report(r: dict[str, Any]) -> None:
    print(f"rpiaas master starting sleep tasks on loopback agents; Python {r['python']}, "
          f"{r['machine']}, {r['cpus']} CPUs")
    for d in r["dispatch"]:
        print(f"{d['worker']} workers: {d['tasks']:,} tasks of {d['task_runtime_s']:g} s per rate "
              f"on {d['agents']} agents ({d['node_cores']} cores, {d['node_mem_mb']} MB each; "
              f"online {d['online_after_s']} s after start)")
        print(f"  {'rate/s':>6}  {'starts/s':>8}  {'done':>5}  {'queued':>6}  {'p50 ms':>7}  "
              f"{'p99 ms':>7}  {'max ms':>7}  {'master p50/p99':>14}  {'agent p50':>9}  "
              f"{'CPU%: master':>12}  {'agents':>6}  {'workers':>7}  sustained")
        for x in d["runs"]:
            mp, ap = x["master_part_ms"] or {}, x["agent_part_ms"] or {}
            print(f"  {x['rate_per_s']:>6g}  {x['starts_per_s']:>8.1f}  {x['completed']:>5}  "
                  f"{x['queued_first']:>6}  {x['latency_p50_ms']:>7}  {x['latency_p99_ms']:>7}  "
                  f"{x['latency_max_ms']:>7}  {mp.get('p50')!s:>6} / {mp.get('p99')!s:>5}  "
                  f"{ap.get('p50')!s:>9}  {x['master_cpu_percent_of_one_core']:>12}  "
                  f"{x['agent_server_cpu_percent_of_one_core']:>6}  "
                  f"{x['workers_cpu_percent_of_one_core']:>7}  {'yes' if x['sustained'] else 'no'}")
            for reason, n in x["failures"].items():
                print(f"          {n} failed: {reason}")
            if x["node_down_events"]:
                print(f"          {x['node_down_events']} times a node went offline for the "
                      f"master (its tasks lost: {x['states'].get('failed', 0)} failed)")
        print(f"  sustained: {d['sustained_starts_per_s']:g} starts/s "
              f"({d['sustained_starts_per_s'] / TARGET_STARTS_PER_S:.2f} x the target "
              f"{TARGET_STARTS_PER_S:g})")
    print("latency: the control plane's start decision to the agent's measured start; master "
          "part: to the agent's receipt of POST /tasks; queued: started after its arrival")
    print(f"targets ({r['dispatch'][0]['worker']} workers): "
          + ("met" if not r["missed"] else "MISSED: " + "; ".join(r["missed"])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--agents", type=int, default=100, help="agents (default 100)")
    p.add_argument("--tasks", type=int, default=2000, help="tasks per rate (default 2,000)")
    p.add_argument("--rates", default="100,200,400",
                   help="arrival rates per second, comma-separated (default 100,200,400)")
    p.add_argument("--workers", default="exec,python",
                   help="task workers, comma-separated, each measured with fresh processes: exec "
                        "(/bin/sleep: the dispatch alone) or python (the agent's own worker); the "
                        "targets apply to the first (default exec,python)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per run")
    p.add_argument("--quick", action="store_true", help="smoke run: 10 agents, 200 tasks at 50/s")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the sustained rate, the p50 latency or a task misses")
    p.add_argument("--serve-agents", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--token-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--dump-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=WORKERS, default="python", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_agents is not None:  # the child: serve N agents until SIGTERM
        if args.port_file is None or args.token_file is None or args.dump_file is None:
            p.error("--serve-agents needs --port-file, --token-file and --dump-file")
        asyncio.run(_serve_agents(args.serve_agents, args.port_file, args.token_file,
                                  args.dump_file, args.worker))
        return 0
    if args.quick:
        args.agents, args.tasks, args.rates = 10, 200, "50"
    workers = args.workers.split(",")
    if not workers or not set(workers) <= set(WORKERS):
        p.error(f"--workers: expected some of {', '.join(WORKERS)}, got {args.workers!r}")
    try:
        rates = [float(x) for x in args.rates.split(",")]
    except ValueError:
        p.error(f"--rates: expected numbers like 100,200, got {args.rates!r}")
    if not 1 <= args.agents <= 254:  # node addresses are 127.0.1.1 .. 127.0.1.254
        p.error("--agents: expected 1 to 254")
    if args.tasks < 2 or not all(r > 0 for r in rates):
        p.error("expected at least 2 tasks and positive rates")
    r: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                         "cpus": os.cpu_count(), "target_starts_per_s": TARGET_STARTS_PER_S,
                         "target_p50_ms": TARGET_P50_MS,
                         "max_sustained_p99_ms": MAX_SUSTAINED_P99_MS}
    r["dispatch"] = [measure(w, args.agents, args.tasks, rates, args.timeout) for w in workers]
    r["missed"] = missed_targets(r["dispatch"][0])
    print_report(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 1 if args.check and r["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
