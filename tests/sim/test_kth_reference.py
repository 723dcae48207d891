"""rpiaas's FCFS and EASY against a reference written apart from the package, on a real trace.

The reference below reads the KTH SP2 log (Parallel Workloads Archive) itself and
schedules it on a pool of 100 processors with an event loop of its own: a heap of
job ends, the arrivals in trace order, and at every instant (after all its ends
and arrivals) one scheduling pass: FCFS starts queued jobs in order while the
first fits; EASY then gives the queue's head a reservation at the earliest time
enough processors come free by the running jobs' estimated ends (their requested
times) and starts a later job now if it fits and either ends by then or leaves the
head enough processors at that time.  It imports nothing from rpiaas.

rpiaas runs the same trace in simulation (``best_fit``; the queue policy under
test) on one node of 100 cores and on 100 nodes of one core, and every job must
start at the same second as in the reference.
"""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import NamedTuple

import pytest

_NAME = "KTH-SP2-1996-2.1-cln.swf"
TRACE = next((p for p in (Path(__file__).resolve().parents[2].parent / "shared" / "traces" / _NAME,
                          Path("/work/shared/traces") / _NAME) if p.is_file()), None)
PROCS = 100
MEM_MB_PER_CORE = 256  # rpiaas's default for a trace without memory; the nodes hold 100 cores' worth


class Job(NamedTuple):
    id: int
    arrival_s: float
    run_s: float
    procs: int
    estimate_s: float  # the requested time, else the run time


def read_jobs(path: Path) -> list[Job]:
    """The jobs an SWF reader keeps: not cancelled (status 5), with a run time, and with a
    processor count (allocated, else requested) from 1 to MaxProcs; time 0 is the first
    kept job's submit time."""
    max_procs = PROCS
    out: list[Job] = []
    first: float | None = None
    for line in path.read_text().splitlines():
        if line.startswith(";"):
            key, _, value = line[1:].partition(":")
            if key.strip() == "MaxProcs":
                max_procs = int(value)
            continue
        f = line.split()
        if len(f) != 18:
            continue
        submit, run, procs, req_procs, req_time, status = (
            float(f[1]), float(f[3]), int(f[4]), int(f[7]), float(f[8]), int(f[10]))
        procs = procs if procs > 0 else req_procs
        if status == 5 or run < 0 or not 0 < procs <= max_procs:
            continue
        first = submit if first is None else first
        out.append(Job(int(f[0]), submit - first, run, procs, req_time if req_time >= 0 else run))
    return out


def reference(jobs: list[Job], backfill: bool, procs: int = PROCS) -> dict[int, float]:
    """Start time of every job under FCFS (``backfill`` false) or EASY."""
    starts: dict[int, float] = {}
    ends: list[tuple[float, int, int]] = []  # (end, job id, processors): the running jobs
    estimated: dict[int, tuple[float, int]] = {}  # job id -> (estimated end, processors)
    queue: list[Job] = []
    free = procs
    i = 0

    def start(job: Job, now: float) -> None:
        nonlocal free
        free -= job.procs
        starts[job.id] = now
        heapq.heappush(ends, (now + job.run_s, job.id, job.procs))
        estimated[job.id] = (now + job.estimate_s, job.procs)

    while i < len(jobs) or ends:
        now = min(jobs[i].arrival_s if i < len(jobs) else float("inf"), ends[0][0] if ends else float("inf"))
        while ends and ends[0][0] == now:
            _, jid, p = heapq.heappop(ends)
            free += p
            del estimated[jid]
        while i < len(jobs) and jobs[i].arrival_s == now:
            queue.append(jobs[i])
            i += 1
        while queue and queue[0].procs <= free:  # first come, first served
            start(queue.pop(0), now)
        if not backfill or not queue:
            continue
        # the head's reservation ("shadow" time) and the processors it leaves spare then
        head = queue[0]
        by_end = sorted((e, jid, p) for jid, (e, p) in estimated.items())
        avail, shadow, k = free, now, 0
        while avail < head.procs:
            e, _, p = by_end[k]
            avail += p
            shadow = max(now, e)
            k += 1
        while k < len(by_end) and by_end[k][0] <= shadow:
            avail += by_end[k][2]
            k += 1
        spare = avail - head.procs
        waiting = [head]
        for job in queue[1:]:
            if job.procs <= free and (now + job.estimate_s <= shadow or job.procs <= spare):
                if now + job.estimate_s > shadow:
                    spare -= job.procs
                start(job, now)
            else:
                waiting.append(job)
        queue = waiting
    return starts


def rpiaas_starts(queue: str, nodes: int, cores: int) -> dict[int, float]:
    from rpiaas.model import Task
    from rpiaas.sim.engine import Simulation

    from ..helpers import scenario

    sc = scenario({
        "name": "kth", "seed": 1, "event_log": False, "sample_interval_s": 86400,
        "cluster": {"node_types": {"sp2": {"cores": cores, "mem_mb": cores * MEM_MB_PER_CORE, "speed": 1.0,
                                           "power_idle_w": 0, "power_max_w": 0}},
                    "clusters": [{"domain": "sp2.test", "prefix": "10.0.1", "count": nodes, "type": "sp2"}]},
        "workload": {"trace": {"path": str(TRACE), **({"wide_jobs": "span"} if nodes > 1 else {})}},
        "policy": "best_fit", "queue": queue})
    starts: dict[int, float] = {}

    def done(task: Task) -> None:
        assert task.start_s is not None
        starts[task.id] = task.start_s

    Simulation(sc, None, on_task=done).run()
    return starts


@pytest.fixture(scope="module")
def jobs() -> list[Job]:
    if TRACE is None:
        pytest.skip(f"the KTH SP2 log ({_NAME}) is not in ../shared/traces beside the checkout")
    return read_jobs(TRACE)


def test_the_reference_keeps_the_jobs_an_swf_reader_keeps(jobs: list[Job]) -> None:
    # 28,476 records, one without a processor count; nothing cancelled or without a run time
    assert len(jobs) == 28_475
    assert jobs[0].arrival_s == 0 and all(a.arrival_s <= b.arrival_s for a, b in itertools.pairwise(jobs))
    assert max(j.procs for j in jobs) == PROCS


def test_the_reference_backfills_and_keeps_the_head_first(jobs: list[Job]) -> None:
    # on a small machine: job 2 is too wide to start at 0, job 3 fits beside job 1 and ends before
    # job 1 does, so EASY starts it at once; FCFS holds it behind job 2
    tiny = [Job(1, 0, 10, 3, 10), Job(2, 0, 5, 4, 5), Job(3, 0, 4, 1, 4)]
    assert reference(tiny, backfill=True, procs=4) == {1: 0, 3: 0, 2: 10}
    assert reference(tiny, backfill=False, procs=4) == {1: 0, 2: 10, 3: 15}


@pytest.mark.parametrize("queue", ["fcfs", "easy_backfill"])
@pytest.mark.parametrize("layout", ["1x100", "100x1"])
def test_every_job_starts_when_the_reference_starts_it(jobs: list[Job], queue: str, layout: str) -> None:
    from rpiaas.inputs.source import InputError

    nodes, cores = (1, 100) if layout == "1x100" else (100, 1)
    try:
        got = rpiaas_starts(queue, nodes, cores)
    except InputError as e:
        if nodes == 1 or "wide_jobs" not in str(e):
            raise
        pytest.skip(f"100 one-core nodes need jobs that span nodes (wide_jobs: span): {e}")
    expect = reference(jobs, backfill=queue == "easy_backfill")
    assert len(got) == len(expect) == len(jobs)
    differ = [(j, expect[j], got.get(j)) for j in expect if got.get(j) != expect[j]]
    assert not differ, f"{len(differ)} of {len(expect)} jobs start elsewhen, first: {differ[:5]}"
    if queue == "easy_backfill":  # EASY is not FCFS on this trace: the test can tell them apart
        assert expect != reference(jobs, backfill=False)
