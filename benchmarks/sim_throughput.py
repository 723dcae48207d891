"""Simulation throughput: rpiaas (framework) against a hand-written SimPy best fit.

Usage::

    .venv/bin/python benchmarks/sim_throughput.py            # cases a, b, c
    .venv/bin/python benchmarks/sim_throughput.py --quick    # small smoke run (< ~30 s)
    .venv/bin/python benchmarks/sim_throughput.py --cases a --repeat 3
    .venv/bin/python benchmarks/sim_throughput.py --mem 64-512   # not memory-bound
    .venv/bin/python benchmarks/sim_throughput.py --profile  # cProfile of the framework on case a
    .venv/bin/python benchmarks/sim_throughput.py --csv --cases a   # whole processes on a CSV trace
    .venv/bin/python benchmarks/sim_throughput.py --scale    # tasks/s and peak RSS, 100 to 100k nodes

See docs/benchmarks.md.

Cases (``rpi4b`` nodes: 4 cores, 4096 MB, speed 1.0; best fit; FIFO queue;
``--quick``: 20k, 20k and 40k tasks):

- a: 1,000 nodes, 100k tasks
- b: 10,000 nodes, 100k tasks
- c: 10,000 nodes, 1M tasks

Tasks ask for 1-4 cores and 512-4096 MB (uniform integers) and carry
exponential work (mean ``MEAN_WORK_CORE_S``).  Arrivals are Poisson at a rate
that puts the *cores* at ``LOAD`` (80 %): a task's cores x runtime demand is
``work_core_s / speed``, so ``rate = LOAD * nodes * cores * speed / mean_work``.

For each case, every run happens in its own subprocess so that its peak RSS
(``ru_maxrss``) belongs to that run alone:

- ``framework``: the scenario is written as YAML into a temporary directory,
  read with :func:`rpiaas.scenario.load_scenario` and run with
  :func:`rpiaas.sim.simulate` into a temporary run directory (tasks.csv,
  nodes.csv, events.jsonl, run.json: the full output a user gets).  Node
  series are sampled every ``SAMPLE_INTERVAL_S`` (an hour) so they do not
  dominate.
- ``plain``: the same workload (same seed, same numpy draws in the same order)
  in plain SimPy: one process per task, nodes in buckets by free cores,
  checked for memory, a FIFO ``deque`` for tasks that do not fit.  No output
  files.  The placement within a bucket (``--rule``, see :func:`run_plain`)
  defaults to the one that schedules like the installed rpiaas
  (:func:`check_rule`), so both produce the same schedule and mean wait.

Before the cases, :func:`check_workload` verifies that the plain version draws
exactly the framework's tasks.

The pair is repeated back-to-back (``--repeat``, alternating which goes first)
and the best wall time of each is kept, so the framework/plain ratio is fair
on a noisy machine.  ``tasks/s`` is tasks over the wall time of the simulation
call (``simulate()`` for the framework, including writing the run directory;
excluding interpreter start and scenario parsing, which are shown apart).
``events/s`` counts control-plane events (arrivals + finishes) per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

NODE_TYPE = "rpi4b"
NODE_CORES = 4
NODE_MEM_MB = 4096
NODE_SPEED = 1.0
CORES = (1, 4)
MEM_MB = (512, 4096)
MEAN_WORK_CORE_S = 600.0
LOAD = 0.8
SEED = 1
SAMPLE_INTERVAL_S = 3600.0
CHUNK = 4096  # rpiaas.workload.CHUNK: the framework draws its workload in chunks of this size


@dataclass(frozen=True)
class Case:
    key: str
    nodes: int
    tasks: int
    mem_lo: int = MEM_MB[0]
    mem_hi: int = MEM_MB[1]
    policy: str = "best_fit"

    @property
    def rate_per_s(self) -> float:
        """Poisson rate putting the cores at LOAD: capacity / mean core-seconds per task."""
        capacity = self.nodes * NODE_CORES * NODE_SPEED  # core-seconds per second
        return LOAD * capacity / (MEAN_WORK_CORE_S / NODE_SPEED)

    @property
    def label(self) -> str:
        return f"({self.key}) {self.nodes:,} nodes, {_short(self.tasks)} tasks"


FULL = {"a": Case("a", 1_000, 100_000), "b": Case("b", 10_000, 100_000),
        "c": Case("c", 10_000, 1_000_000)}
QUICK = {"a": Case("a", 1_000, 20_000), "b": Case("b", 10_000, 20_000),
         "c": Case("c", 10_000, 40_000)}


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def memory_load(case: Case) -> float:
    """Memory-seconds demanded per memory-second available at the case's rate.

    A task holds ``mem_mb`` for ``work / (cores * speed)`` seconds.
    """
    mean_mem = (case.mem_lo + case.mem_hi) / 2
    mean_inv_cores = sum(1 / c for c in range(CORES[0], CORES[1] + 1)) / (CORES[1] - CORES[0] + 1)
    per_node_rate = LOAD * NODE_CORES * NODE_SPEED / MEAN_WORK_CORE_S
    return per_node_rate * mean_mem * MEAN_WORK_CORE_S * mean_inv_cores / NODE_SPEED / NODE_MEM_MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ---------------------------------------------------------------- framework run
def scenario_yaml(case: Case, seed: int = SEED) -> str:
    return f"""\
name: bench_{case.key}_{case.nodes}n_{case.tasks}t
description: sim_throughput benchmark case {case.key}
seed: {seed}
sample_interval_s: {SAMPLE_INTERVAL_S!r}
cluster:
  clusters:
    - domain: bench.rpiaas.test
      count: {case.nodes}
      type: {NODE_TYPE}
workload:
  generator:
    count: {case.tasks}
    arrival: {{rate_per_s: {case.rate_per_s!r}}}
    cores: {{dist: uniform, low: {CORES[0]}, high: {CORES[1]}}}
    mem_mb: {{dist: uniform, low: {case.mem_lo}, high: {case.mem_hi}}}
    work_core_s: {{dist: exponential, mean: {MEAN_WORK_CORE_S!r}}}
policy: {case.policy}
"""


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run_framework(case: Case, workdir: Path, seed: int = SEED, event_log: bool = True) -> dict[str, Any]:
    t0 = time.perf_counter()
    from rpiaas.scenario import load_scenario
    from rpiaas.sim import simulate

    import_s = time.perf_counter() - t0
    path = workdir / "scenario.yaml"
    path.write_text(scenario_yaml(case, seed) + ("" if event_log else "event_log: false\n"))
    t0 = time.perf_counter()
    scenario = load_scenario(path)
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    summary, out = simulate(scenario, workdir / "run")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out is not None
    # the writer process (a long run hands its tables to one): its CPU seconds and peak RSS
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = json.loads((out / "timing.json").read_text())
    return {
        "impl": "framework" if event_log else "lean", "wall_s": wall, "cpu_s": cpu, "run_s": timing["wall_s"],
        "load_s": load_s,
        "import_s": import_s, "tasks": summary["tasks"], "completed": summary["completed"],
        "events": timing["events"], "mean_wait_s": summary["mean_wait_s"],
        "p95_wait_s": summary["p95_wait_s"], "utilization": summary["mean_utilization"],
        "sim_end_s": summary["duration_s"], "output_mb": _dir_mb(out), "rss_mb": peak_rss_mb(),
        "writer_cpu_s": kids.ru_utime + kids.ru_stime, "writer_rss_mb": kids.ru_maxrss / 1024,
    }


# ---------------------------------------------------------------- plain SimPy run
Chunk = tuple[list[float], list[int], list[int], list[float]]  # arrivals, cores, mem, work


def workload_chunks(case: Case, seed: int, scheme: str) -> Iterator[Chunk]:
    """The benchmark workload drawn the way ``rpiaas.workload.Generator`` draws it, without rpiaas.

    ``scheme`` ``per-field``: each field has its own stream, spawned from the
    run's workload stream, refilled ``CHUNK`` draws at a time; ``shared``: one
    stream, fields drawn in turn per chunk (the first rpiaas release).
    :func:`check_workload` tells which one the installed rpiaas uses.
    """
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])  # rng_streams()["workload"]
    if scheme == "per-field":
        r_gap, r_cores, r_mem, r_work, _ = (np.random.default_rng(int(s))
                                            for s in rng.integers(0, 2**63, size=5))
    else:
        r_gap = r_cores = r_mem = r_work = rng
    t = 0.0
    made = 0
    while made < case.tasks:
        n = min(CHUNK, case.tasks - made)
        size = CHUNK if scheme == "per-field" else n
        gaps = r_gap.exponential(1.0 / case.rate_per_s, size=size)
        cores = r_cores.integers(CORES[0], CORES[1] + 1, size=size).tolist()
        mem = r_mem.integers(case.mem_lo, case.mem_hi + 1, size=size).tolist()
        work = r_work.exponential(MEAN_WORK_CORE_S, size=size).tolist()
        arrivals = (t + np.cumsum(gaps)).tolist()
        t = arrivals[-1]
        yield arrivals[:n], cores[:n], mem[:n], work[:n]
        made += n


def check_workload(case: Case, seed: int, n: int = 10_000) -> str | None:
    """Which draw scheme reproduces the framework's first ``n`` tasks (``None``: neither)."""
    from rpiaas.scenario import load_scenario
    from rpiaas.sim.engine import rng_streams

    with tempfile.TemporaryDirectory(prefix="rpiaas-bench-check-") as tmp:
        path = Path(tmp) / "scenario.yaml"
        small = replace(case, tasks=min(n, case.tasks))
        path.write_text(scenario_yaml(small, seed))
        scenario = load_scenario(path)
        want = [(t.arrival_s, t.cores, t.mem_mb, t.work_core_s)
                for t in scenario.workload.tasks(rng_streams(seed)["workload"])]
    for scheme in ("per-field", "shared"):
        got = [x for chunk in workload_chunks(small, seed, scheme) for x in zip(*chunk, strict=True)]
        if got == want:
            return scheme
    return None


RULES = ("tightest", "first")
POLICIES = ("best_fit", "least_loaded")  # --policy; least_loaded scores nodes (rpiaas_score)


def run_plain(case: Case, seed: int = SEED, scheme: str = "per-field",
              rule: str = "tightest") -> dict[str, Any]:
    """Best fit in plain SimPy, no framework: one process per task, FIFO queue.

    Nodes are bucketed by free cores; a task goes to the first bucket, from
    its own number of cores up, holding a node with enough free memory.
    Within that bucket ``rule`` picks the node:

    - ``tightest``: the least free memory that fits, then the node longest at
      that level (each bucket a sorted list of memory levels searched with
      ``bisect``, each level an insertion-ordered ``dict``), as ``rpiaas`` best
      fit does;
    - ``first``: the node that entered the bucket first (each bucket an
      insertion-ordered ``dict``, scanned for memory), as the first release;
    - ``least_loaded``: not best fit but rpiaas ``least_loaded`` written with
      numpy: among the nodes with room, the highest ``-utilization + 1e-6 *
      free cores / cores``, first on ties, where the utilisation is that of the
      end of the previous event (as the framework's view shows it to the policy).
    """
    import numpy as np
    import simpy

    t0, c0 = time.perf_counter(), time.process_time()
    env = simpy.Environment()
    timeout = env.timeout
    new_event = env.event
    n_nodes, ncores, speed = case.nodes, NODE_CORES, NODE_SPEED
    free_cores = [ncores] * n_nodes
    free_mem = [NODE_MEM_MB] * n_nodes
    waiting: deque[tuple[simpy.Event, int, int]] = deque()
    waits = array("d")
    done = [0]
    longest = [0]  # longest the FIFO queue got

    changed: list[int] = []  # least_loaded: nodes whose utilisation is due an update

    def settle() -> None:  # the end of an event
        pass

    if rule == "least_loaded":
        cf_a = np.full(n_nodes, ncores, dtype=np.int64)
        mf_a = np.full(n_nodes, NODE_MEM_MB, dtype=np.int64)
        cores_a = np.full(n_nodes, ncores, dtype=np.int64)
        util = np.zeros(n_nodes)

        def best_fit(c: int, m: int) -> int:
            idx = np.flatnonzero((cf_a >= c) & (mf_a >= m))
            if not idx.size:
                return -1
            score = -util[idx] + 1e-6 * (cf_a[idx] / cores_a[idx])
            return int(idx[int(score.argmax())])

        def move(node: int, c: int, m: int) -> None:
            cf_a[node] -= c
            mf_a[node] -= m
            changed.append(node)

        def settle() -> None:
            for node in changed:
                util[node] = (ncores - cf_a[node]) / ncores
            changed.clear()
    elif rule == "tightest":
        # per free-cores count: sorted distinct free-memory levels, and the
        # nodes at each level in the order they got there
        levels: list[list[int]] = [[] for _ in range(ncores + 1)]
        groups: list[dict[int, dict[int, None]]] = [{} for _ in range(ncores + 1)]
        levels[ncores] = [NODE_MEM_MB]
        groups[ncores] = {NODE_MEM_MB: dict.fromkeys(range(n_nodes))}

        def best_fit(c: int, m: int) -> int:
            for f in range(c, ncores + 1):
                lv = levels[f]
                i = bisect_left(lv, m)
                if i < len(lv):
                    return next(iter(groups[f][lv[i]]))
            return -1

        def move(node: int, c: int, m: int) -> None:  # take (c, m > 0) or give back (< 0)
            f, mm = free_cores[node], free_mem[node]
            g = groups[f][mm]
            del g[node]
            if not g:
                del groups[f][mm]
                lv = levels[f]
                del lv[bisect_left(lv, mm)]
            f2, m2 = f - c, mm - m
            g2 = groups[f2].get(m2)
            if g2 is None:
                g2 = groups[f2][m2] = {}
                insort(levels[f2], m2)
            g2[node] = None
            free_cores[node] = f2
            free_mem[node] = m2
    else:
        # dicts as insertion-ordered sets: the node that has had that many free
        # cores longest comes first
        by_free: list[dict[int, None]] = [{} for _ in range(ncores + 1)]
        by_free[ncores] = dict.fromkeys(range(n_nodes))

        def best_fit(c: int, m: int) -> int:
            for f in range(c, ncores + 1):
                for node in by_free[f]:
                    if free_mem[node] >= m:
                        return node
            return -1

        def move(node: int, c: int, m: int) -> None:
            f = free_cores[node]
            del by_free[f][node]
            by_free[f - c][node] = None
            free_cores[node] = f - c
            free_mem[node] -= m

    def task(arrival: float, c: int, m: int, work: float) -> Any:
        node = -1 if waiting else best_fit(c, m)
        if node < 0:
            ev = new_event()
            waiting.append((ev, c, m))
            if len(waiting) > longest[0]:
                longest[0] = len(waiting)
            node = yield ev  # resources taken by whoever woke us
        else:
            move(node, c, m)
            settle()
        waits.append(env.now - arrival)
        yield timeout(work / (c * speed))
        move(node, -c, -m)
        done[0] += 1
        while waiting:
            ev, c2, m2 = waiting[0]
            n2 = best_fit(c2, m2)
            if n2 < 0:
                break
            waiting.popleft()
            move(n2, c2, m2)
            ev.succeed(n2)
        settle()

    def source() -> Any:
        process = env.process
        for arrivals, cores, mem, work in workload_chunks(case, seed, scheme):
            for i in range(len(arrivals)):
                yield timeout(arrivals[i] - env.now)
                process(task(arrivals[i], cores[i], mem[i], work[i]))

    env.process(source())
    env.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    w = np.frombuffer(waits, dtype=np.float64)
    return {
        "impl": "plain", "rule": rule, "wall_s": wall, "cpu_s": cpu, "run_s": wall, "load_s": 0.0,
        "import_s": 0.0, "tasks": case.tasks, "completed": done[0], "events": case.tasks + done[0],
        "mean_wait_s": float(w.mean()), "p95_wait_s": float(np.percentile(w, 95)),
        "utilization": None, "sim_end_s": env.now, "output_mb": 0.0, "rss_mb": peak_rss_mb(),
        "max_queue": longest[0],
    }


def check_rule(seed: int, scheme: str, policy: str = "best_fit") -> str | None:
    """Which plain placement rule schedules like the installed rpiaas best fit (``None``: neither).

    Runs a small queueing case (40 nodes, 4,000 tasks) in both and compares
    the mean waits, which differ as soon as two placements do.
    """
    from rpiaas.scenario import load_scenario
    from rpiaas.sim import simulate

    probe = Case("probe", 40, 4_000, policy=policy)
    with tempfile.TemporaryDirectory(prefix="rpiaas-bench-check-") as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(scenario_yaml(probe, seed))
        summary, _ = simulate(load_scenario(path))
    for rule in (RULES if policy == "best_fit" else (policy,)):
        if _same(summary["mean_wait_s"], run_plain(probe, seed, scheme, rule)["mean_wait_s"]):
            return rule
    return None


# ---------------------------------------------------------------- --csv: whole processes on a trace
PLAIN_CSV = Path(__file__).resolve().parent / "plain_csv_sim.py"


def write_trace(case: Case, seed: int, scheme: str, path: Path) -> None:
    """The case's tasks as a CSV trace (exact floats), the file both sides read."""
    with open(path, "w", newline="") as f:
        f.write("id,arrival_s,cores,mem_mb,work_core_s\n")
        i = 0
        for arrivals, cores, mem, work in workload_chunks(case, seed, scheme):
            f.write("".join(f"{i + j},{a!r},{c},{m},{w!r}\n"
                            for j, (a, c, m, w) in enumerate(zip(arrivals, cores, mem, work, strict=True))))
            i += len(arrivals)


def csv_scenario_yaml(case: Case, trace: Path, seed: int = SEED) -> str:
    """The case with its tasks read from ``trace`` (start_s 0: arrival times as written)."""
    head, _, _ = scenario_yaml(case, seed).partition("workload:")
    return head + f"""workload:
  trace:
    path: {trace.name}
    format: csv
    start_s: 0
policy: {case.policy}
"""


def run_process(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Wall time, CPU time (user + system) and peak RSS (MB) of a whole process, and its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(out)
        raise SystemExit(f"{cmd[1]} failed (exit {proc.returncode})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def bench_csv_case(case: Case, repeat: int, seed: int, scheme: str) -> dict[str, Any]:
    """``rpiaas run`` on a CSV trace against plain_csv_sim.py on the same file, whole processes."""
    print(f"\n{case.label}, CSV trace: rate {case.rate_per_s:.4g}/s, mem {case.mem_lo}-{case.mem_hi} MB, "
          f"repeat {repeat}; whole processes", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "framework": []}
    with tempfile.TemporaryDirectory(prefix=f"rpiaas-bench-csv-{case.key}-") as tmp:
        trace = Path(tmp) / "trace.csv"
        write_trace(case, seed, scheme, trace)
        scenario = Path(tmp) / "scenario.yaml"
        scenario.write_text(csv_scenario_yaml(case, trace, seed))
        # compiled modules cached (in a directory of our own) as an installed package has them,
        # whatever PYTHONDONTWRITEBYTECODE says: the untimed first pair fills the cache
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        for i in range(-1, repeat):
            for impl in (("plain", "framework") if i % 2 == 0 else ("framework", "plain")):
                if impl == "plain":
                    wall, cpu, rss, out = run_process([sys.executable, str(PLAIN_CSV), str(trace),
                                                       str(case.nodes)], env)
                    tasks, _, mean_wait = out.split()[-3:]
                    r = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "tasks": int(tasks),
                         "mean_wait_s": float(mean_wait)}
                else:
                    out_dir = Path(tmp) / f"run{i}"
                    wall, cpu, rss, _ = run_process([sys.executable, "-m", "rpiaas", "run", str(scenario),
                                                     "--out", str(out_dir), "--quiet"], env)
                    summary = json.loads((out_dir / "run.json").read_text())["summary"]
                    r = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "tasks": summary["tasks"],
                         "mean_wait_s": summary["mean_wait_s"]}
                    shutil.rmtree(out_dir)
                if i < 0:
                    continue  # the warm-up pair
                runs[impl].append(r)
                print(f"  {impl:<9} {wall:8.2f} s  {r['tasks'] / wall:10,.0f} tasks/s  rss {rss:6.1f} MB  "
                      f"mean wait {r['mean_wait_s']:.6g} s", flush=True)
    p, f = (min(runs[k], key=lambda r: r["wall_s"]) for k in ("plain", "framework"))
    pairs = [a["wall_s"] / b["wall_s"] for a, b in zip(runs["plain"], runs["framework"], strict=True)]
    return {"case": asdict(case), "label": case.label, "plain": p, "framework": f,
            "ratio": p["wall_s"] / f["wall_s"], "pair_ratios": pairs,
            "cpu_ratio": min(r["cpu_s"] for r in runs["plain"]) / min(r["cpu_s"] for r in runs["framework"]),
            "rss_mb": {k: max(r["rss_mb"] for r in v) for k, v in runs.items()}}


def print_csv_table(results: list[dict[str, Any]]) -> None:
    print("\n" + "=" * 100)
    print("--csv: whole processes (interpreter start, imports, reading the trace, the run): "
          "`rpiaas run` on a CSV trace, full run directory, against plain_csv_sim.py on the same file")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, python {platform.python_version()}, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case':<30} {'impl':<9} {'wall s':>8} {'tasks/s':>10} {'peak RSS':>9} {'mean wait s':>12} "
          f"{'ratio':>6}  pairs")
    for r in results:
        for impl in ("plain", "framework"):
            x = r[impl]
            fw = impl == "framework"
            print(f"{r['label'] if not fw else '':<30} {impl:<9} {x['wall_s']:8.2f} "
                  f"{x['tasks'] / x['wall_s']:10,.0f} {r['rss_mb'][impl]:6.1f} MB {x['mean_wait_s']:12.6g} "
                  f"{(str(round(r['ratio'], 2)) + 'x') if fw else '':>6}  "
                  f"{'/'.join(f'{v:.2f}' for v in r['pair_ratios']) if fw else ''}")
        same = "identical" if _same(r["framework"]["mean_wait_s"], r["plain"]["mean_wait_s"]) else "DIFFERENT"
        print(f"  ({r['case']['key']}) mean waits {same}; median of the pairs' ratios "
              f"{statistics.median(r['pair_ratios']):.2f}x; CPU-time ratio {r['cpu_ratio']:.2f}x "
              "(best CPU seconds of each process); compiled modules cached, after an untimed pair")


# ---------------------------------------------------------------- --scale: the framework alone
SCALE_GRID = "100:10k,100:100k,1k:10k,1k:100k,1k:1M,10k:100k,10k:1M,100k:100k,100k:1M,10k:10M"


def _count(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def parse_grid(text: str) -> list[tuple[int, int]]:
    """``NODES:TASKS,...`` (``k`` and ``M`` allowed) as (nodes, tasks) pairs."""
    out = []
    for item in text.split(","):
        nodes, _, tasks = item.partition(":")
        out.append((_count(nodes), _count(tasks)))
    return out


def bench_scale(grid: list[tuple[int, int]], seed: int, mem: tuple[int, int]) -> list[dict[str, Any]]:
    """The framework alone (full run directory) at each size, each run in its own process."""
    results = []
    print(f"\n{'nodes':>8} {'tasks':>10} {'wall s':>8} {'tasks/s':>10} {'CPU s':>8} {'peak RSS':>9} "
          f"{'writer CPU s':>12} {'writer RSS':>10} {'output':>9} {'mean wait s':>12}", flush=True)
    for nodes, tasks in grid:
        case = Case(f"s{nodes}x{tasks}", nodes, tasks, mem_lo=mem[0], mem_hi=mem[1])
        r = spawn("framework", case, seed, "per-field", RULES[0])
        r["nodes"] = nodes
        results.append(r)
        print(f"{nodes:>8,} {tasks:>10,} {r['wall_s']:8.2f} {tasks / r['wall_s']:10,.0f} "
              f"{r.get('cpu_s', r['wall_s']):8.2f} {r['rss_mb']:6.0f} MB {r.get('writer_cpu_s', 0):12.2f} "
              f"{r.get('writer_rss_mb', 0):7.0f} MB {r['output_mb']:6.0f} MB {r['mean_wait_s']:12.6g}", flush=True)
    return results


# ---------------------------------------------------------------- driver
def child(impl: str, case: Case, seed: int, scheme: str, rule: str) -> None:
    c0 = time.process_time()
    if impl in ("framework", "lean"):
        import rpiaas  # noqa: F401  (so that _revision sees where it comes from)
    revision = _revision()  # what this run imports, whatever is committed meanwhile
    if impl == "plain":
        res = run_plain(case, seed, scheme, rule)
    else:
        workdir = Path(tempfile.mkdtemp(prefix=f"rpiaas-bench-{case.key}-"))
        try:
            res = run_framework(case, workdir, seed, event_log=impl == "framework")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    res["process_cpu_s"] = time.process_time() - c0
    res["revision"] = revision
    print("RESULT " + json.dumps(res), flush=True)


def spawn(impl: str, case: Case, seed: int, scheme: str, rule: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl,
           "--case-json", json.dumps(asdict(case)), "--seed", str(seed), "--scheme", scheme,
           "--rule", rule]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{impl} run of case {case.key} failed (exit {proc.returncode})")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT "):]))


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's wall time and the largest peak RSS."""
    out = dict(min(runs, key=lambda r: r["wall_s"]))
    out["walls"] = [round(r["wall_s"], 3) for r in runs]
    out["rss_mb"] = max(r["rss_mb"] for r in runs)
    out["best_cpu_s"] = min(r.get("cpu_s", r["wall_s"]) for r in runs)
    return out


def bench_case(case: Case, repeat: int, seed: int, scheme: str, rule: str) -> dict[str, Any]:
    print(f"\n{case.label}: rate {case.rate_per_s:.4g}/s, mem {case.mem_lo}-{case.mem_hi} MB "
          f"(memory load {memory_load(case):.0%}), repeat {repeat}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "framework": [], "lean": []}
    for i in range(repeat):
        order = ("plain", "framework", "lean") if i % 2 == 0 else ("lean", "framework", "plain")
        for impl in order:
            r = spawn(impl, case, seed, scheme, rule)
            runs[impl].append(r)
            print(f"  {impl:<9} {r['wall_s']:8.2f} s  {r['tasks'] / r['wall_s']:10,.0f} tasks/s  "
                  f"rss {r['rss_mb']:6.1f} MB  mean wait {r['mean_wait_s']:.6g} s", flush=True)
    p, f, lean = best(runs["plain"]), best(runs["framework"]), best(runs["lean"])
    pairs = [a["wall_s"] / b["wall_s"] for a, b in zip(runs["plain"], runs["framework"], strict=True)]
    return {"case": asdict(case), "label": case.label, "rate_per_s": case.rate_per_s,
            "revisions": sorted({r["revision"] for r in runs["framework"]}),
            "memory_load": memory_load(case), "plain": p, "framework": f, "lean": lean,
            "lean_ratio": p["wall_s"] / lean["wall_s"],
            "cpu_ratio": p["best_cpu_s"] / f["best_cpu_s"],
            "ratio": p["wall_s"] / f["wall_s"], "pair_ratios": pairs}


def _revision() -> str:
    """The git revision of the rpiaas being measured (``+dirty`` with local changes)."""
    root = Path(__file__).resolve().parent.parent
    rpiaas = sys.modules.get("rpiaas")
    where = Path(rpiaas.__file__).resolve().parents[2] if rpiaas and rpiaas.__file__ else root  # (src/rpiaas)
    if where != root:  # e.g. PYTHONPATH pointing at a patched copy
        return f"from {where}"
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty=+dirty"],
                             capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(a))


def print_table(results: list[dict[str, Any]]) -> None:
    width = 118
    print("\n" + "=" * width)
    mems = sorted({(r["case"]["mem_lo"], r["case"]["mem_hi"]) for r in results})
    policies = ", ".join(sorted({r["case"]["policy"] for r in results}))
    print(f"sim_throughput: {NODE_TYPE} nodes ({NODE_CORES} cores, {NODE_MEM_MB} MB), {policies} + FIFO, "
          f"tasks of {CORES[0]}-{CORES[1]} cores and "
          f"{', '.join(f'{lo}-{hi}' for lo, hi in mems)} MB, exponential work (mean "
          f"{MEAN_WORK_CORE_S:g} core-s), Poisson arrivals at {LOAD:.0%} core load")
    print(f"framework: load_scenario + simulate() writing the full run directory; node series "
          f"every sample_interval_s = {SAMPLE_INTERVAL_S:g} s (so they do not dominate)")
    rules = sorted({r.get("rule", "?") for r in results})
    print(f"plain: hand-written SimPy {policies} (rule {', '.join(rules)}), same tasks, no output.  "
          "Best wall of each over the repeats; events = arrivals + finishes")
    revisions = sorted({v for r in results for v in r["revisions"]})
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, rpiaas {' + '.join(revisions)}, "
          f"python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("-" * width)
    print(f"{'case':<30} {'impl':<9} {'wall s':>8} {'tasks/s':>10} {'events/s':>10} "
          f"{'peak RSS':>9} {'mean wait s':>12} {'ratio':>6}  {'pairs':<12}")
    print("-" * width)
    for r in results:
        for impl in ("plain", "framework", "lean"):
            x = r[impl]
            fw = impl != "plain"
            ratio = f"{r['ratio' if impl == 'framework' else 'lean_ratio']:.2f}x" if fw else ""
            pairs = "/".join(f"{v:.2f}" for v in r["pair_ratios"]) if impl == "framework" else ""
            print(f"{'' if fw else r['label']:<30} {impl:<9} {x['wall_s']:8.2f} "
                  f"{x['tasks'] / x['wall_s']:10,.0f} {x['events'] / x['wall_s']:10,.0f} "
                  f"{x['rss_mb']:6.1f} MB {x['mean_wait_s']:12.6g} {ratio:>6}  {pairs:<12}")
    print("-" * width)
    print("ratio = framework tasks/s / plain tasks/s, from the best walls (pairs: each back-to-back "
          "pair); targets: >= 1.0x (stretch 2x), peak RSS <= 300 MB at 1M tasks")
    print("framework = the full run directory; lean = the same without events.jsonl (event_log: false)")
    for r in results:
        f, p = r["framework"], r["plain"]
        same = "identical" if _same(f["mean_wait_s"], p["mean_wait_s"]) else "DIFFERENT"
        print(f"  ({r['case']['key']}) CPU-time ratio {r['cpu_ratio']:.2f}x (plain {p['best_cpu_s']:.2f} s, "
              f"framework {f['best_cpu_s']:.2f} s: the best CPU seconds of the simulation calls, "
              "steadier than wall time on a busy machine); the framework's writer process, on the "
              f"other core: {f.get('writer_cpu_s', 0):.2f} CPU s, peak RSS {f.get('writer_rss_mb', 0):.0f} MB")
        print(f"  ({r['case']['key']}) mean waits {same} (framework {f['mean_wait_s']}, plain "
              f"{p['mean_wait_s']:.12g}); memory load {r['memory_load']:.0%}, longest queue "
              f"{p['max_queue']:,}; framework: run loop {f['run_s']:.2f} s, load_scenario "
              f"{f['load_s']:.2f} s, output {f['output_mb']:.0f} MB, utilization "
              f"{f['utilization']:.3f}")


def profile(case: Case, seed: int, out: Path | None, top: int) -> None:
    """cProfile the framework run of ``case`` in this process; print the top functions."""
    import cProfile
    import pstats

    from rpiaas.scenario import load_scenario
    from rpiaas.sim import simulate

    workdir = Path(tempfile.mkdtemp(prefix="rpiaas-bench-prof-"))
    try:
        path = workdir / "scenario.yaml"
        path.write_text(scenario_yaml(case, seed))
        scenario = load_scenario(path)
        prof = cProfile.Profile()
        prof.enable()
        summary, _ = simulate(scenario, workdir / "run")
        prof.disable()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if out is not None:
        prof.dump_stats(str(out))
        print(f"profile written to {out}")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(f"mean wait {summary['mean_wait_s']} s over {summary['tasks']} tasks")
    calls = sum(row[1] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"calls per task: {calls / summary['tasks']:.1f} (all calls of this process, builtins "
          "included; a long run's writer process formats the tables in a process of its own)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small cases (20k-40k tasks), one repeat")
    ap.add_argument("--cases", default="abc", help="which cases to run (default: abc)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="plain/framework pairs per case (default 2; 1 with --quick)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--mem", default=f"{MEM_MB[0]}-{MEM_MB[1]}", metavar="LO-HI",
                    help="task memory range in MB, uniform integers (default %(default)s); "
                         "e.g. 64-512 for a workload that is not memory-bound")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the framework on case a (in process) instead of benchmarking")
    ap.add_argument("--profile-out", type=Path, help="with --profile: write the .prof file here")
    ap.add_argument("--top", type=int, default=30, help="with --profile: rows to print")
    ap.add_argument("--csv", action="store_true",
                    help="whole processes on a CSV trace of the case's tasks: `rpiaas run` against "
                         "benchmarks/plain_csv_sim.py reading the same file")
    ap.add_argument("--scale", nargs="?", const=SCALE_GRID, metavar="NODES:TASKS,...",
                    help="the framework alone (full run directory) at each size, its own process "
                         f"each: tasks/s and peak RSS (default grid: {SCALE_GRID})")
    ap.add_argument("--child", choices=("plain", "framework", "lean"), help=argparse.SUPPRESS)
    ap.add_argument("--case-json", help=argparse.SUPPRESS)
    ap.add_argument("--scheme", default="per-field", help=argparse.SUPPRESS)
    ap.add_argument("--policy", choices=POLICIES, default=POLICIES[0],
                    help="the framework's policy, written the same way in plain SimPy (default "
                         "%(default)s; least_loaded scores every node with numpy, rpiaas_score)")
    ap.add_argument("--rule", choices=(*RULES, "least_loaded"), default=None,
                    help="the plain version's choice within a free-cores bucket: tightest (least "
                         "free memory that fits) or first (first to enter the bucket); default: "
                         "whichever schedules like the installed rpiaas")
    args = ap.parse_args(argv)

    if args.child:
        child(args.child, Case(**json.loads(args.case_json)), args.seed, args.scheme,
              args.rule or RULES[0])
        return 0
    lo, _, hi = args.mem.partition("-")
    if not (lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= NODE_MEM_MB):
        ap.error(f"--mem: expected LO-HI with 1 <= LO <= HI <= {NODE_MEM_MB}, got {args.mem!r}")
    cases = {k: replace(c, mem_lo=int(lo), mem_hi=int(hi), policy=args.policy)
             for k, c in (QUICK if args.quick else FULL).items()}
    if args.profile:
        profile(cases["a"], args.seed, args.profile_out, args.top)
        return 0
    if args.scale:
        scale = bench_scale(parse_grid(args.scale), args.seed, (int(lo), int(hi)))
        if args.json is not None:
            args.json.write_text(json.dumps(scale, indent=2) + "\n")
        return 0
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    scheme = check_workload(cases["a"], args.seed)
    if scheme is None:
        print("WARNING: the plain baseline does not reproduce the framework's tasks (has "
              "rpiaas.workload.Generator changed?); the comparison is of similar, not identical, "
              "workloads", file=sys.stderr)
        scheme = "per-field"
    else:
        print(f"workload check: plain and framework draw identical tasks ({scheme} streams)")
    unknown = set(args.cases) - set(cases)
    if unknown:
        ap.error(f"--cases: unknown case(s) {', '.join(sorted(unknown))} (known: {', '.join(cases)})")
    if args.csv:
        if args.policy != "best_fit" or args.rule not in (None, "tightest"):
            ap.error("--csv compares best fit (rule tightest) only")
        csv_results = [bench_csv_case(cases[k], repeat, args.seed, scheme) for k in args.cases]
        print_csv_table(csv_results)
        if args.json is not None:
            args.json.write_text(json.dumps(csv_results, indent=2) + "\n")
        return 0
    rule = args.rule
    if rule is None:
        rule = check_rule(args.seed, scheme, args.policy)
        if rule is None:
            rule = RULES[0] if args.policy == "best_fit" else args.policy
            print(f"WARNING: no plain placement rule schedules like the installed rpiaas {args.policy}; "
                  f"using {rule!r}: mean waits will differ", file=sys.stderr)
        else:
            print(f"placement check: plain rule {rule!r} schedules like rpiaas {args.policy}")
    results = [bench_case(cases[k], repeat, args.seed, scheme, rule) for k in args.cases]
    for r in results:
        r["rule"] = rule
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
