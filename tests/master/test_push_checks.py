"""A node's own token does not let it corrupt a run: every pushed task end is checked.

A real master and agent on loopback (``start_local_testbed``) run a scenario of
two ten-second tasks on node1.  While they run, the test pushes ends of node1's
own task signed with node1's own token, each with one field out of the push
schema or of its attempt (an end a trillion seconds before 1970, ``true``,
1e300, Infinity, before the task was placed; a 1 MB ``state``; negative or
impossible CPU seconds and memory; ...).  Each is answered 400 naming that
field, nothing is booked (the run still runs the task, its journal has no end
of it), and both the run's ``events.jsonl`` and the history store record each
refusal with node1's name.
The task then ends for real and the run's files are sane: a makespan of
seconds, not 1e300.  A push with a 1 MB error string is taken, its error cut
to 4 KB with a marker: the run's ``events.jsonl`` stays small.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.tests.test_openapi import ServedApp
from rpiaas.client.client import run_live
from rpiaas.live.push import MAX_ERROR_CHARS, TRUNCATED
from rpiaas.master import create_app, load_master_config
from rpiaas.master.keys import REGISTRY
from rpiaas.master.runs_api import PUSH_REJECTED_EVENT
from rpiaas.scenario import load_scenario
from rpiaas.store import open_store
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from .test_security import _post, _request, _wait

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NODE1 = "node1.local.rpiaas.test"
MB = 1 << 20
TASK_S = 10.0
CLUSTER = {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 1,
                         "type": "rpi4b"}]}
SCENARIO = {"name": "pushes", "seed": 1, "cluster": CLUSTER, "policy": "first_fit",
            "workload": {"tasks": [{"id": i, "arrival_s": 0, "cores": 1, "mem_mb": 16,
                                    "work_core_s": TASK_S} for i in (1, 2)]}}


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("pushes"), 1, poll_interval_s=0.5,
                             master_port=0) as bed:
        yield bed


def _running(tb: LocalTestbed) -> list[dict[str, Any]]:
    _, _, body = _request(tb.agents[NODE1].url, "GET", "/tasks",
                          headers={"Authorization": f"Bearer {tb.node_token(NODE1)}"})
    return [t for t in json.loads(body)["tasks"] if t["state"] == "running"]


def _bad_pushes(task: dict[str, Any], placed_s: float) -> list[tuple[str, dict[str, Any] | bytes]]:
    """(the field named in the refusal, the pushed document) for each bad push of ``task``."""
    end = {**task, "state": "completed", "exit_status": 0, "ended_s": time.time(), "cpu_s": 0.01,
           "peak_rss_mb": 5.0}
    raw_inf = json.dumps({**end, "ended_s": 0}).replace('"ended_s": 0', '"ended_s": 1e999').encode()
    return [
        ("ended_s", {**end, "ended_s": -1e12}),
        ("ended_s", {**end, "ended_s": True}),
        ("ended_s", {**end, "ended_s": 1e300}),
        ("ended_s", raw_inf),
        ("ended_s", {**end, "ended_s": "soon"}),
        ("ended_s", {**end, "ended_s": None}),
        ("ended_s", {**end, "ended_s": placed_s - 3600}),  # before the attempt was placed
        ("ended_s", {**end, "ended_s": time.time() + 3600}),  # after the run's clock
        ("state", {**end, "state": "x" * MB}),
        ("state", {**end, "state": "done"}),
        ("state", {k: v for k, v in end.items() if k != "state"}),
        ("started_s", {**end, "started_s": end["ended_s"] + 1}),
        ("started_s", {**end, "started_s": -1}),
        ("cpu_s", {**end, "cpu_s": -1}),
        ("cpu_s", {**end, "cpu_s": 1e300}),
        ("peak_rss_mb", {**end, "peak_rss_mb": -5}),
        ("peak_rss_mb", {**end, "peak_rss_mb": 1e300}),
        ("exit_status", {**end, "exit_status": 1.5}),
        ("exit_status", {**end, "exit_status": 10 ** 30}),
        ("error", {**end, "state": "failed", "error": ["a", "list"]}),
        ("kind", {**end, "kind": "k" * MB}),
    ]


def _push(tb: LocalTestbed, doc: dict[str, Any] | bytes) -> tuple[int, Any]:
    if isinstance(doc, bytes):
        status, _, body = _request(tb.master_url, "POST", "/api/v1/task-ended", doc, {
            "Content-Type": "application/json", "Authorization": f"Bearer {tb.node_token(NODE1)}"})
        return status, json.loads(body)
    return _post(tb.master_url, "/api/v1/task-ended", doc, tb.node_token(NODE1))


def test_a_nodes_own_bad_pushes_are_refused_and_the_run_stays_sane(tb: LocalTestbed) -> None:
    since = time.time()
    status, run = _post(tb.master_url, "/api/v1/runs", {"scenario": SCENARIO}, tb.master_token)
    assert status == 201, run
    run_dir = tb.dir / "runs" / run["id"]
    try:
        first, second = sorted(_wait(lambda: len(got := _running(tb)) == 2 and got),
                               key=lambda t: t["id"])
        bad = _bad_pushes(first, since)
        for field, doc in bad:
            status, answer = _push(tb, doc)
            print(f"{field}: {status} {answer['error'][:120]}")
            assert status == 400 and answer["error"].startswith(f"{field}: "), (field, answer)
        # nothing booked: the run still runs both tasks, its journal has no end
        state = json.loads(_request(tb.master_url, "GET", f"/api/v1/runs/{run['id']}")[2])
        assert (state["state"], state["running"], state["ended"]) == ("running", 2, 0), state
        journal = (run_dir / "journal.jsonl").read_text()
        assert '"finish"' not in journal and '"fail"' not in journal
        # a 1 MB error is taken, cut to 4 KB with a marker
        failed = {**second, "state": "failed", "exit_status": None, "ended_s": time.time(),
                  "error": "e" * MB}
        assert _push(tb, failed) == (200, {"known": True})
        done = _wait(lambda: json.loads(_request(tb.master_url, "GET",
                                                 f"/api/v1/runs/{run['id']}")[2])["state"] != "running",
                     timeout_s=TASK_S + 30)
        assert done
    finally:
        _request(tb.master_url, "DELETE", f"/api/v1/runs/{run['id']}",
                 headers={"Authorization": f"Bearer {tb.master_token}"})
    result = run_dir / "result"
    makespan = json.loads((result / "run.json").read_text())["summary"]["makespan_s"]
    print(f"makespan_s: {makespan}")
    assert TASK_S - 1 < makespan < TASK_S + 10, makespan
    with (result / "tasks.csv").open() as f:
        rows = {int(r["task_id"]): r for r in csv.DictReader(f)}
    assert rows[1]["state"] == "completed" and float(rows[1]["end_s"]) < TASK_S + 10, rows[1]
    assert rows[2]["state"] == "failed", rows[2]
    events = [json.loads(line) for line in (result / "events.jsonl").read_text().splitlines()]
    (reason,) = [e["reason"] for e in events if e.get("ev") == "fail" and e.get("task") == 2]
    assert reason.endswith(TRUNCATED) and len(reason) == MAX_ERROR_CHARS
    assert (result / "events.jsonl").stat().st_size < 4 * MAX_ERROR_CHARS
    # the run's event log has each refusal, with the node's name and the field
    rejected = [e for e in events if e.get("push") == "rejected"]
    assert [(e["node"], e["task"], e["field"]) for e in rejected] == [(NODE1, 1, f) for f, _ in bad]
    # the history store has each refusal, with the node's name
    with open_store(str(tb.dir / "history.db")) as store:
        refused = store.events(NODE1, since, time.time() + 1, PUSH_REJECTED_EVENT)
    assert [e.data["field"] for e in refused] == [field for field, _ in bad]
    assert all(e.node == NODE1 and e.data["task"] == first["id"] for e in refused)
    logs = "\n".join(p.read_text(errors="replace") for p in (tb.dir / "logs").iterdir())
    assert f"{NODE1} pushed an end of task" in logs and "Traceback" not in logs


def _lying_proxy(target: str) -> web.Application:
    """A node's agent that lies: forwards every request to the agent at ``target``, but starts its
    tasks without ``notify_url`` (it pushes nothing) and answers ``GET /tasks`` with every ended
    task's end at 1e300."""
    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "POST" and request.path == "/tasks":
            spec = json.loads(body)
            spec.pop("notify_url", None)
            body = json.dumps(spec).encode()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, target + request.path_qs, data=body, headers=headers) as resp:
            answer = await resp.read()
            if request.method == "GET" and request.path == "/tasks" and resp.status == 200:
                doc = json.loads(answer)
                for task in doc["tasks"]:
                    if task["state"] != "running":
                        task["ended_s"] = 1e300
                answer = json.dumps(doc).encode()
            return web.Response(body=answer, status=resp.status, content_type=resp.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def test_an_agent_answering_an_impossible_end_fails_the_attempt_and_the_run_ends(tmp_path: Path) -> None:
    """Only the master's poll learns of the ends (no push), and each is 1e300: each attempt fails
    at once, its reason the refusal; the retry too; the run ends with sane figures."""
    with start_local_testbed(tmp_path / "tb", 1, poll_interval_s=0.25) as tb, \
            ServedApp(_lying_proxy(tb.agents[NODE1].url)) as proxy:
        config = load_master_config(tb.dir / "master.yaml")
        host, port = proxy.url.removeprefix("http://").split(":")
        config = dataclasses.replace(config, agents={NODE1: (host, int(port))},
                                     runs_dir=str(tmp_path / "runs"), store=str(tmp_path / "second.db"))
        with ServedApp(create_app(config)) as master:
            deadline = time.monotonic() + 10
            while not all(e.online for e in master.apps[0][REGISTRY]):
                assert time.monotonic() < deadline, "the node did not come online"
                time.sleep(0.05)
            path = tmp_path / "liar.json"
            path.write_text(json.dumps({**SCENARIO, "retries": 1, "workload": {"tasks": [
                {"id": 1, "arrival_s": 0, "cores": 1, "mem_mb": 16, "work_core_s": 1.0}]}}))
            summary, run_dir = run_live(load_scenario(path), master.url, tb.master_token,
                                        tmp_path / "live", quiet=True)
    print(summary)
    assert summary["failed"] == 1 and summary["makespan_s"] == 0 and summary["duration_s"] < 30
    with (run_dir / "tasks.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert row["state"] == "failed" and row["attempts"] == "2" and float(row["end_s"]) < 30, row
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    reasons = [e["reason"] for e in events if e.get("ev") == "fail"]
    rejected = [(e["node"], e["task"], e["field"]) for e in events if e.get("push") == "rejected"]
    assert rejected == [(NODE1, 1, "ended_s")] * 2
    assert len(reasons) == 2 and all(r.startswith("its agent's document was refused: ended_s: 1e+300 is "
                                                  "outside the attempt") for r in reasons), reasons
