"""A hand-written SimPy best fit reading a CSV trace: the plain side of ``sim_throughput.py --csv``.

Usage::

    python benchmarks/plain_csv_sim.py TRACE.csv NODES

``TRACE.csv`` has the columns ``id,arrival_s,cores,mem_mb,work_core_s`` (what
``sim_throughput.py --csv`` writes, and what an rpiaas CSV trace reads).
Every node is an ``rpi4b`` (4 cores, 4096 MB, speed 1.0).  The simulation is
``run_plain`` of ``sim_throughput.py`` with rule ``tightest`` (one SimPy
process per task, nodes bucketed by free cores and sorted by free memory, a
FIFO queue), fed row by row from the file with the ``csv`` module.  Prints one
line: ``tasks completed mean_wait_s``.  Imports nothing but the standard
library and SimPy, so its whole process is what a hand-written script costs.
"""

from __future__ import annotations

import csv
import sys
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from typing import Any

import simpy

NODE_CORES = 4
NODE_MEM_MB = 4096
NODE_SPEED = 1.0


def rows(path: str) -> Iterator[tuple[float, int, int, float]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        at = {h: i for i, h in enumerate(head)}
        ia, ic, im, iw = at["arrival_s"], at["cores"], at["mem_mb"], at["work_core_s"]
        for row in reader:
            yield float(row[ia]), int(row[ic]), int(row[im]), float(row[iw])


def main(path: str, n_nodes: int) -> None:
    env = simpy.Environment()
    timeout = env.timeout
    new_event = env.event
    ncores, speed = NODE_CORES, NODE_SPEED
    free_cores = [ncores] * n_nodes
    free_mem = [NODE_MEM_MB] * n_nodes
    waiting: deque[tuple[simpy.Event, int, int]] = deque()
    wait_sum = [0.0, 0]
    done = [0]
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

    def task(arrival: float, c: int, m: int, work: float) -> Any:
        node = -1 if waiting else best_fit(c, m)
        if node < 0:
            ev = new_event()
            waiting.append((ev, c, m))
            node = yield ev  # resources taken by whoever woke us
        else:
            move(node, c, m)
        wait_sum[0] += env.now - arrival
        wait_sum[1] += 1
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

    def source() -> Any:
        process = env.process
        for arrival, c, m, work in rows(path):
            yield timeout(arrival - env.now)
            process(task(arrival, c, m, work))

    env.process(source())
    env.run()
    print(wait_sum[1], done[0], wait_sum[0] / max(1, wait_sum[1]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
