"""A parallel job's parts in a live run, without a testbed: their start documents, how their
ends become the job's one event, what they measured, and their journal records on resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rpiaas.core.events import TaskFailed, TaskFinished
from rpiaas.live.agent_client import AgentClient
from rpiaas.live.jobs import LiveJobs, spread_figures
from rpiaas.live.options import AgentNode, LiveOptions
from rpiaas.live.resume import replay
from rpiaas.live.shell import LiveRun
from rpiaas.master.registry import NodeEntry
from rpiaas.model import Task
from rpiaas.store import open_store

from ..helpers import scenario
from .test_agent_tasks import _inbox, _run


def _job(**extra: object) -> Task:
    task = Task(id=7, arrival_s=0.0, cores=2, mem_mb=64, work_core_s=30.0, nodes=2, **extra)  # type: ignore[arg-type]
    task.placed, task.node, task.epoch = (1, 0), 1, 1
    return task


def test_each_part_runs_its_share_or_the_jobs_runtime_and_a_command_finds_its_peers(tmp_path: Path) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            job = _job(kind="command", command=("prog", "-x"), env=(("A", "1"),))
            names = "n1=10.0.0.2,n0=10.0.0.1"
            sleep = _run(tmp_path, 1, LiveOptions(timescale=0.1), client).agents
            spec = sleep.part_spec(job, 1, 0, 2, names, "run1.7.1.r1")
            # the job's runtime: 30 core-s over its 4 cores at speed 1.5 = 5 s, times the timescale
            assert (spec["kind"], spec["cores"], spec["duration_s"]) == ("sleep", 2, pytest.approx(0.5))
            cpu = _run(tmp_path, 1, LiveOptions(timescale=0.1, task_kind="cpu"), client).agents
            # its share: 2 of the job's 4 cores, so half the work, times the timescale
            assert cpu.part_spec(job, 0, 1, 2, names, "x")["work_core_s"] == pytest.approx(1.5)
            cmd = _run(tmp_path, 1, LiveOptions(task_kind="scenario"), client).agents
            spec = cmd.part_spec(job, 1, 0, 2, names, "run1.7.1.r1")
            assert spec["argv"] == ["prog", "-x"]
            assert spec["env"] == {"A": "1", "RPIAAS_JOB": "7", "RPIAAS_RANK": "1", "RPIAAS_NODES": names}

    asyncio.run(go())


def test_every_part_sleeps_the_jobs_runtime_at_its_slowest_parts_pace(tmp_path: Path) -> None:
    def kind(speed: float) -> dict[str, float]:
        return {"cores": 2, "mem_mb": 1024, "speed": speed, "power_idle_w": 2, "power_max_w": 6}

    sc = scenario({"name": "t", "cluster": {
        "node_types": {"fast": kind(3.0), "slow": kind(1.0)},
        "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 1, "type": "fast"},
                     {"domain": "d.test", "prefix": "10.0.2", "count": 1, "type": "slow"}]},
        "workload": {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 64, "work_core_s": 1}]},
        "policy": "first_fit"})

    async def go() -> None:
        async with AgentClient() as client:
            entries: list[AgentNode] = [NodeEntry(n, "127.0.0.1", 1) for n in sc.cluster.nodes]
            run = LiveRun("run1", sc, entries, client, open_store(str(tmp_path / "h.db")), tmp_path,
                          LiveOptions(timescale=0.1))
            job = _job()
            job.placed = (0, 1)
            durations = [run.agents.part_spec(job, r, n, 2, "", "x")["duration_s"] for r, n in enumerate(job.placed)]
            # 30 core-s over the job's 4 cores at the slow node's speed 1: 7.5 s on both, times 0.1
            assert durations == [pytest.approx(0.75), pytest.approx(0.75)]

    asyncio.run(go())


def test_a_job_ends_with_its_last_part_and_fails_once_with_its_first_failure(tmp_path: Path) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            run = _run(tmp_path, 1, LiveOptions(), client)
            run.agents.replaying = True  # the parts are registered, nothing is sent
            job = _job()
            run.agents.launch_job(job)
            run.agents.replaying = False
            t0 = run.clock.t0
            ids = [a for _, a in run.agents.parts[7]]
            assert ids == ["run1.7.1.r0", "run1.7.1.r1"]

            def doc(rank: int, state: str, start: float, end: float) -> dict[str, object]:
                return {"id": ids[rank], "state": state, "started_s": t0 + start, "ended_s": t0 + end,
                        "cpu_s": 1.0 + rank, "peak_rss_mb": 10.0 * (rank + 1), "exit_status": 0}

            assert run.report(doc(1, "completed", 0.2, 3.0))
            assert _inbox(run) == []  # rank 0 still runs
            assert run.report(doc(0, "completed", 0.1, 2.5))
            [(at, ev)] = _inbox(run)
            assert isinstance(ev, TaskFinished) and ev.task_id == 7 and at == pytest.approx(3.0)
            assert run.measured_start[7] == pytest.approx(0.2)  # its last part's start
            assert run.measured_use[7] == (3.0, 20.0)  # CPU summed, the largest peak

            run.agents.forget(7)
            job.epoch = 2
            run.agents.replaying = True
            run.jobs.attempt(7)
            run.agents.launch_job(job)
            run.agents.replaying = False
            ids = [a for _, a in run.agents.parts[7]]
            failed = {**doc(0, "failed", 0.1, 1.0), "exit_status": 3}
            assert run.report(failed)
            [(at, ev)] = _inbox(run)
            assert isinstance(ev, TaskFailed) and ev.reason == f"part 0 on {run.names[1]}: exit status 3"
            assert run.report({**doc(1, "failed", 0.1, 1.1), "exit_status": 4})
            assert _inbox(run) == []  # the job failed once

    asyncio.run(go())


def test_the_parts_measures_make_the_jobs() -> None:
    jobs = LiveJobs()
    assert jobs.started(1, 1, 5.2) == 5.2
    assert jobs.started(1, 0, 5.0) == 5.2  # the job started with its last part
    assert jobs.started(1, 0, 9.0) == 5.2  # a part's first start is kept
    assert jobs.ended(1, 0, 8.0, 2) is None
    assert jobs.ended(1, 1, 7.5, 2) == 8.0
    assert jobs.used(1, 0, (1.0, 30.0)) == (1.0, 30.0)
    assert jobs.used(1, 1, (None, 50.0)) == (1.0, 50.0)
    # each part within the job's row; its spread kept
    assert jobs.close(1, 2, 5.1, 8.0) == [(5.1, 8.0), (5.2, 7.5)]
    assert jobs.spreads == [pytest.approx(0.2)]
    jobs.started(2, 0, 3.0)  # a job whose second part never started: no spread, its times the job's
    assert jobs.close(2, 2, 2.9, 4.0) == [(3.0, 4.0), (2.9, 4.0)]
    assert len(jobs.spreads) == 1
    assert spread_figures(jobs.spreads) == {"jobs": 1, "p50": 0.2, "p95": 0.2, "max": 0.2}


def test_the_journal_gives_a_resumed_run_its_parts_starts_and_use() -> None:
    jobs = LiveJobs()
    starts: dict[int, float] = {}
    use: dict[int, tuple[float | None, float | None]] = {}
    records: list[dict[str, Any]] = [{"started": 4, "agent_id": "r.4.1.r0", "rank": 0, "t": 1.0},
               {"started": 4, "agent_id": "r.4.1.r1", "rank": 1, "t": 1.25},
               {"used": 4, "rank": 1, "cpu_s": 0.5, "peak_mem_mb": 12.0},
               {"used": 4, "rank": 0, "cpu_s": 0.25, "peak_mem_mb": 20.0},
               {"started": 5, "agent_id": "r.5.1", "t": 2.0}]
    replay(records, iter(()), lambda *a: None, starts, [True], use, jobs)
    assert starts == {4: 1.25, 5: 2.0}
    assert use == {4: (0.75, 20.0)}
    assert jobs.close(4, 2, 1.0, 3.0) == [(1.0, 3.0), (1.25, 3.0)]
