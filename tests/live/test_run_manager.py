"""The runs of one master: refused scenarios leave nothing behind; which runs are unfinished."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.live.agent_client import AgentClient
from rpiaas.live.journal import JOURNAL
from rpiaas.live.memory import release_free_memory
from rpiaas.live.options import RESULT, LiveOptions
from rpiaas.live.run_manager import CANCELLED, SCENARIO_FILE, RunManager
from rpiaas.master.registry import NodeEntry
from rpiaas.store import open_store

from ..helpers import cluster, scenario

KNOWN = scenario({"name": "k", "cluster": cluster(2), "workload": {"tasks": []},
                  "policy": "first_fit"})
ENTRIES = {n.name: NodeEntry(n, "127.0.0.1", 1) for n in KNOWN.cluster.nodes}
SCENARIO = {"name": "s", "cluster": cluster(3), "policy": "first_fit",
            "workload": {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 64, "work_core_s": 1}]}}


def _manager(tmp_path: Path, client: AgentClient) -> RunManager:
    return RunManager(tmp_path / "runs", ENTRIES.get, client, open_store(str(tmp_path / "h.db")))


def test_a_scenario_naming_unknown_nodes_or_bad_starts_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            manager = _manager(tmp_path, client)
            with pytest.raises(ValueError, match=re.escape(
                    "names nodes this master does not know: node3.c.test")):
                manager.create(SCENARIO, "s.yaml", LiveOptions(), None)
            with pytest.raises(InputError, match="policy"):
                manager.create({**SCENARIO, "policy": "no-such-policy"}, "s.yaml", LiveOptions(),
                               None)
            assert manager.runs == {} and list((tmp_path / "runs").iterdir()) == []
            assert manager.report({"id": "x.1.0", "state": "completed"}, "n") is False
            assert manager.placements() == {}

    asyncio.run(go())


def _run_dir(root: Path, name: str, *, journal: bool = True, result: bool = False,
             cancelled: bool = False, scenario_data: dict[str, object] | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / SCENARIO_FILE).write_text(json.dumps(scenario_data or SCENARIO))
    if journal:
        (d / JOURNAL).write_text(json.dumps({"run": name, "t0": 0.0, "timescale": 1.0,
                                             "task_kind": "sleep", "notify_url": None}) + "\n")
    if result:
        (d / RESULT).mkdir()
        (d / RESULT / "run.json").write_text("{}")
    if cancelled:
        (d / CANCELLED).write_text("cancelled\n")
    return d


def test_unfinished_runs_and_a_run_that_cannot_be_resumed(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            manager = _manager(tmp_path, client)
            assert manager.unfinished() == []  # no runs directory yet
            runs = tmp_path / "runs"
            lost = _run_dir(runs, "lost")  # names a node this master does not know
            _run_dir(runs, "done", result=True)
            _run_dir(runs, "stopped", cancelled=True)
            _run_dir(runs, "never", journal=False)
            assert manager.unfinished() == [lost]
            assert manager.resume_all() == []
            assert "run lost cannot be resumed" in caplog.text

    asyncio.run(go())


def test_an_ended_run_is_kept_as_its_record_not_its_objects(tmp_path: Path) -> None:
    """A master that runs for months keeps each run it ran as a few facts: the run's control
    plane, tasks and scenario go when it ends, and the API shows it as before."""
    import gc
    import weakref

    from rpiaas.live.run_manager import EndedRun, RunFacts
    from rpiaas.master.runs_api import run_json

    empty = {"name": "e", "cluster": cluster(2), "policy": "first_fit", "workload": {"tasks": []}}

    async def go() -> None:
        async with AgentClient() as client:
            manager = _manager(tmp_path, client)
            run = manager.create(empty, "e.yaml", LiveOptions(task_kind="sleep"), None)
            shown_running = run_json(run, manager.facts(run.id))
            ref = weakref.ref(run)
            task = manager.tasks[run.id]
            del run
            await asyncio.wait_for(task, 60)
            del task
            ended = manager.runs["e"] if "e" in manager.runs else next(iter(manager.runs.values()))
            assert isinstance(ended, EndedRun) and ended.status.state == "completed"
            assert manager.tasks == {} and manager.running() == []
            assert manager.facts(ended.id) == RunFacts("first_fit", None, 0, None, "sleep", 1.0)
            gc.collect()
            assert ref() is None, "the ended run's objects are still referenced"
            await asyncio.sleep(0)  # the trim after an ended run is the loop's next step
            # what the run freed goes back to the system (glibc's malloc_trim), not kept in the heap
            assert manager.trims == (1 if release_free_memory() else 0)
            shown = run_json(ended, manager.facts(ended.id))
            assert {k: shown[k] for k in ("policy", "task_kind", "timescale", "tasks_total")} == \
                {k: shown_running[k] for k in ("policy", "task_kind", "timescale", "tasks_total")}
            assert shown["state"] == "completed" and shown["progress"] == 1.0 and "run.json" in shown["files"]
            await manager.cancel(ended.id)  # ended: nothing to stop
            assert ended.status.state == "completed"
            await manager.close()

    asyncio.run(go())
