"""KTH SP2 under FCFS and EASY: ``rpiaas run`` against a plain SimPy script, as whole processes.

The trace is the KTH SP2 log of the Parallel Workloads Archive (28,475 jobs on
a 100-processor IBM SP2 that ran EASY), beside the checkout in
``../shared/traces/`` (or given with ``--trace``).  Two machine layouts:

- ``1x100``: one node of 100 cores (every job fits one node);
- ``100x1``: 100 nodes of one core (a job of ``p`` processors spans ``p``
  nodes: it needs ``wide_jobs: span``; without it the layout is reported as
  not runnable).

For each layout and queue (``fcfs``, ``easy_backfill``) it times, as separate
processes started from the shell's point of view (interpreter start-up and
imports included), alternately:

- **rpiaas**: ``python -m rpiaas run SCENARIO --no-event-log -o DIR``
  (``best_fit``; the run directory is written as usual), started in a temporary
  directory, so that the rpiaas imported is the installed one or ``PYTHONPATH``'s
  (the table names it);
- **plain**: this file run as ``python kth_easy.py plain ...``, a hand-written
  SimPy simulation that imports nothing but SimPy and the standard library and
  writes one line per job (id, start, end).

After one untimed pair (which fills a cache of compiled modules of its own, as an
installed package has, whatever ``PYTHONDONTWRITEBYTECODE`` says) it takes the
median wall time of ``--pairs`` alternating pairs (5), the peak
resident memory of each process (``ru_maxrss`` of that child), checks that the
two give every job the same start time, and prints the ratio
``plain / rpiaas`` (above 1: rpiaas is faster).

    python benchmarks/kth_easy.py                       # both layouts, both queues, 5 pairs
    python benchmarks/kth_easy.py --layouts 1x100 --queues easy_backfill --pairs 3
    python benchmarks/kth_easy.py plain --queue easy_backfill --layout 1x100 --out starts.csv
"""

from __future__ import annotations

import argparse
import heapq
import sys
from typing import Any

PROCS = 100  # the SP2's processors (the header's MaxProcs)
MEM_MB_PER_CORE = 256  # rpiaas's default for a trace that records no memory


# --------------------------------------------------------------------- plain
def read_swf(path: str) -> list[tuple[int, float, float, int, float]]:
    """(job id, arrival s, run time s, processors, requested time s or -1) of the jobs
    kept: not cancelled (status 5), with a run time and a processor count within MaxProcs.
    Arrival is counted from the first kept job's submit time."""
    max_procs = PROCS
    jobs = []
    origin = None
    with open(path) as f:
        for line in f:
            if line.startswith(";"):
                if line[1:].strip().startswith("MaxProcs:"):
                    max_procs = int(line.split(":")[1])
                continue
            x = line.split()
            if len(x) < 18:
                continue
            run, procs, req_time, status = float(x[3]), int(x[4]), float(x[8]), int(x[10])
            if procs <= 0:
                procs = int(x[7])
            if status == 5 or run < 0 or procs <= 0 or procs > max_procs:
                continue
            submit = float(x[1])
            if origin is None:
                origin = submit
            jobs.append((int(x[0]), submit - origin, run, procs, req_time))
    return jobs


def plain(path: str, queue_policy: str, nodes: int, cores: int, out: str | None) -> None:
    """The whole machine as a pool of ``nodes * cores`` processors: FCFS, or EASY (the
    queue's head gets a reservation at the earliest time enough processors come free by
    the running jobs' estimated ends; a later job starts now if it fits and ends by then
    or leaves the head enough processors at that time).  Events at one time are applied
    together (ends, then arrivals) before one scheduling pass."""
    import simpy

    jobs = read_swf(path)
    env = simpy.Environment()
    backfill = queue_policy == "easy_backfill"
    wide = cores == 1 and nodes > 1  # a job takes `procs` single-core nodes
    free = [nodes * cores]
    free_nodes = list(range(nodes))  # (100x1) a heap of free node ids
    queue: list[Any] = []  # waiting jobs, in arrival order
    running: dict[int, tuple[float, int]] = {}  # job -> (estimated end, processors)
    result: list[tuple[int, float, float, list[int]]] = []
    pending = [False]

    def start(job: Any) -> None:
        jid, _, run, procs, req = job
        free[0] -= procs
        taken = [heapq.heappop(free_nodes) for _ in range(procs)] if wide else [0]
        now = env.now
        running[jid] = (now + (req if req >= 0 else run), procs)
        result.append((jid, now, now + run, taken))
        env.process(finish(jid, run, procs, taken))

    def finish(jid: int, run: float, procs: int, taken: list[int]) -> Any:
        yield env.timeout(run)
        del running[jid]
        free[0] += procs
        if wide:
            for n in taken:
                heapq.heappush(free_nodes, n)
        wake()

    def wake() -> None:
        # one pass per instant: an event triggered now comes after every event already
        # due now (arrivals and ends were scheduled earlier), so the pass sees them all
        if not pending[0]:
            pending[0] = True
            ev = env.event()
            ev.callbacks.append(schedule)
            ev.succeed()

    def schedule(_: Any) -> None:
        pending[0] = False
        now = env.now
        i = 0
        while i < len(queue) and queue[i][3] <= free[0]:
            start(queue[i])
            i += 1
        del queue[:i]
        if not backfill or not queue:
            return
        head = queue[0][3]
        # the head's reservation: the running jobs by estimated end until enough come free
        ends = [(end, jid, procs) for jid, (end, procs) in running.items()]
        heapq.heapify(ends)
        avail = free[0]
        shadow = now
        while avail < head:
            end, _, procs = heapq.heappop(ends)
            avail += procs
            shadow = max(now, end)
        while ends and ends[0][0] <= shadow:  # the others that end by then
            avail += heapq.heappop(ends)[2]
        extra = avail - head  # processors the head leaves at the shadow time
        kept = [queue[0]]
        for job in queue[1:]:
            procs = job[3]
            if procs <= free[0]:
                est = job[4] if job[4] >= 0 else job[2]
                if now + est <= shadow:
                    start(job)
                    continue
                if procs <= extra:
                    extra -= procs
                    start(job)
                    continue
            kept.append(job)
        queue[:] = kept

    def arrive(ev: Any) -> None:
        queue.append(ev.value)
        wake()

    for job in jobs:  # every arrival scheduled up front, in trace order
        env.timeout(job[1], value=job).callbacks.append(arrive)
    env.run()
    if out is not None:
        with open(out, "w") as f:
            f.write("job,start_s,end_s,nodes\n")
            for jid, s, e, taken in result:
                f.write(f"{jid},{s},{e},{';'.join(map(str, taken))}\n")


# --------------------------------------------------------------------- driver
SCENARIO = """\
name: kth-{layout}-{queue}
seed: 1
event_log: false
sample_interval_s: 86400
cluster:
  node_types:
    sp2: {{cores: {cores}, mem_mb: {mem_mb}, speed: 1.0, power_idle_w: 0, power_max_w: 0}}
  clusters:
    - {{domain: sp2.test, prefix: 10.0.1, count: {nodes}, type: sp2}}
workload:
  trace:
    path: {trace}
    wide_jobs: {wide}
policy: best_fit
queue: {queue}
"""
LAYOUTS = {"1x100": (1, 100), "100x1": (100, 1)}


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float, int, str]:
    """Wall seconds, CPU seconds (its own and its children's), peak RSS (MB) and exit status
    of ``cmd`` as a child process, and its stderr."""
    import os
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return wall, cpu, usage.ru_maxrss / 1024, p.returncode, err.read().decode(errors="replace")


def starts_of(path: str, id_col: str, start_col: str) -> dict[int, float]:
    import csv

    with open(path, newline="") as f:
        return {int(r[id_col]): float(r[start_col]) for r in csv.DictReader(f)}


def drive(argv: list[str]) -> int:
    import os
    import shutil
    import statistics
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    default = next((p for p in (root.parent / "shared" / "traces" / "KTH-SP2-1996-2.1-cln.swf",
                                Path("/work/shared/traces/KTH-SP2-1996-2.1-cln.swf")) if p.is_file()), None)
    ap = argparse.ArgumentParser(prog="kth_easy.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", default=str(default) if default else None,
                    help="the KTH SP2 SWF file (default: ../shared/traces/ beside the checkout)")
    ap.add_argument("--layouts", default="1x100,100x1", help="comma-separated: 1x100, 100x1")
    ap.add_argument("--queues", default="fcfs,easy_backfill", help="comma-separated: fcfs, easy_backfill")
    ap.add_argument("--pairs", type=int, default=5, help="alternating pairs of runs (median taken)")
    a = ap.parse_args(argv)
    if not a.trace or not Path(a.trace).is_file():
        print(f"error: no KTH SP2 trace at {a.trace} (give --trace)", file=sys.stderr)
        return 2
    py = sys.executable
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="kth_easy_"))
    # compiled modules cached (in a directory of our own) as an installed package has them,
    # whatever PYTHONDONTWRITEBYTECODE says: the untimed first run of each command fills it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    # the rpiaas the children import (run from the temporary directory: PYTHONPATH decides)
    import subprocess

    where = subprocess.run([py, "-c", "import rpiaas; print(rpiaas.__file__)"], env=env, cwd=tmp,
                           capture_output=True, text=True, check=False).stdout.strip() or "no rpiaas"
    try:
        for layout in a.layouts.split(","):
            nodes, cores = LAYOUTS[layout]
            for queue in a.queues.split(","):
                scen = tmp / f"{layout}-{queue}.yaml"
                scen.write_text(SCENARIO.format(layout=layout, queue=queue, nodes=nodes, cores=cores,
                                                mem_mb=cores * MEM_MB_PER_CORE, trace=a.trace,
                                                wide="span" if nodes > 1 else "clip"))
                plain_out = tmp / f"{layout}-{queue}.plain.csv"
                plain_cmd = [py, __file__, "plain", "--trace", a.trace, "--queue", queue,
                             "--layout", layout, "--out", str(plain_out)]
                fw: list[tuple[float, float, float]] = []
                pl: list[tuple[float, float, float]] = []
                failed = ""
                run_dir = tmp / f"{layout}-{queue}.run"
                fw_cmd = [py, "-m", "rpiaas", "run", str(scen), "--no-event-log", "--force", "-o", str(run_dir)]
                for i in range(-1, a.pairs):  # -1: the warm-up pair, not counted
                    for cmd, into in ((fw_cmd, fw), (plain_cmd, pl))[:: 1 if i % 2 == 0 else -1]:
                        if cmd is fw_cmd:
                            shutil.rmtree(run_dir, ignore_errors=True)
                        wall, cpu, rss, rc, err = timed(cmd, env, str(tmp))
                        if rc != 0:
                            failed = err.strip().splitlines()[-1] if err.strip() else f"exit status {rc}"
                            break
                        if i >= 0:
                            into.append((wall, cpu, rss))
                    if failed:
                        break
                if failed:
                    why = ("needs jobs that span nodes (wide_jobs: span), which this rpiaas does not have"
                           if "wide_jobs" in failed else "failed")
                    print(f"{layout} {queue}: rpiaas run {why}: {failed}")
                    continue
                mine = starts_of(str(run_dir / "tasks.csv"), "task_id", "start_s")
                ref = starts_of(str(plain_out), "job", "start_s")
                same = sum(1 for j, s in ref.items() if mine.get(j) == s)
                rows.append((layout, queue, same, len(ref), len(mine),
                             statistics.median(w for w, _, _ in fw), statistics.median(w for w, _, _ in pl),
                             statistics.median(c for _, c, _ in fw), statistics.median(c for _, c, _ in pl),
                             max(r for _, _, r in fw), max(r for _, _, r in pl)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not rows:
        return 1
    import platform

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"KTH SP2 ({a.trace}), whole processes, median of {a.pairs} alternating pairs; "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}")
    print(f"rpiaas: {where}")
    print(f"{'layout':7} {'queue':14} {'same starts':>15} {'rpiaas s':>9} {'plain s':>8} {'ratio':>6} "
          f"{'rpiaas cpu':>10} {'plain cpu':>9} {'ratio':>6} {'rpiaas MB':>9} {'plain MB':>8}")
    bad = 0
    for layout, queue, same, total, got, fw_s, pl_s, fw_c, pl_c, fw_mb, pl_mb in rows:
        bad += same != total or got != total
        print(f"{layout:7} {queue:14} {f'{same}/{total}':>15} {fw_s:9.2f} {pl_s:8.2f} {pl_s / fw_s:5.2f}x "
              f"{fw_c:10.2f} {pl_c:9.2f} {pl_c / fw_c:5.2f}x {fw_mb:9.0f} {pl_mb:8.0f}")
    print("ratio: plain / rpiaas (above 1: rpiaas is faster); cpu: user + system seconds of the process "
          "and its children (rpiaas's writer process); MB: peak RSS of the process (the largest)")
    if bad:
        print("the schedules differ (see 'same starts')")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["plain"]:
        ap = argparse.ArgumentParser(prog="kth_easy.py plain")
        ap.add_argument("--trace", required=True)
        ap.add_argument("--queue", choices=("fcfs", "easy_backfill"), default="easy_backfill")
        ap.add_argument("--layout", choices=tuple(LAYOUTS), default="1x100")
        ap.add_argument("--out")
        a = ap.parse_args(argv[1:])
        nodes, cores = LAYOUTS[a.layout]
        plain(a.trace, a.queue, nodes, cores, a.out)
        return 0
    return drive(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
