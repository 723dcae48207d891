"""The client of the master's API (``rpiaas run --live``): the scenario it sends, refusals it
reports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.tests.helpers import free_port
from rpiaas.client.client import MasterError, run_live
from rpiaas.master import create_app, load_master_config
from rpiaas.scenario import load_scenario, rng_streams

ROOT = Path(__file__).resolve().parents[2]


def test_a_cluster_file_is_sent_inline() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "original-testbed.yaml")
    payload = scenario.payload()
    assert isinstance(payload["cluster"], dict) and payload["cluster"]["clusters"]
    assert payload["workload"] == scenario.data["workload"]  # a generator: the master draws it


def test_a_trace_is_sent_as_the_tasks_it_makes() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "trace-replay.yaml",
                             [("workload.trace.max_jobs", 5)])
    payload = scenario.payload()
    tasks = list(scenario.workload.tasks(rng_streams(scenario.seed)["workload"]))
    assert [t["id"] for t in payload["workload"]["tasks"]] == [t.id for t in tasks]
    assert payload["workload"]["tasks"][0]["work_core_s"] == tasks[0].work_core_s


@pytest.fixture
def master(tmp_path: Path) -> Iterator[str]:
    """A master on loopback, served from a thread (the client under test is synchronous)."""
    (tmp_path / "token").write_text("the-master-token-0123\n")
    (tmp_path / "master.yaml").write_text(
        "cluster:\n  clusters:\n    - {domain: c.test, prefix: 127.0.1, count: 1, type: rpi4b}\n"
        f"poll_interval_s: 60\nstore: history.db\ntoken_file: token\n"
        f"agents:\n  node1.c.test: '127.0.0.1:{free_port()}'\n")
    app = create_app(load_master_config(tmp_path / "master.yaml"))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_refusals_carry_the_masters_message_and_status(master: str, tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    with pytest.raises(MasterError, match="HTTP 401: wrong token") as e:
        run_live(scenario, master, "not-the-token", tmp_path / "out", quiet=True)
    assert e.value.status == 401 and "not-the-token" not in str(e.value)
    # the right token, a master without a node secret: it cannot start tasks
    with pytest.raises(MasterError, match="no node secret") as e:
        run_live(scenario, master, "the-master-token-0123", tmp_path / "out", quiet=True)
    assert e.value.status == 400
    assert not (tmp_path / "out").exists()


def test_an_unreachable_master_and_an_output_that_is_not_a_run(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MasterError, match="cannot reach the master") as e:
        run_live(scenario, url, None, tmp_path / "out", quiet=True)
    assert e.value.status is None
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a run directory"):
        run_live(scenario, url, None, tmp_path / "busy", quiet=True)
