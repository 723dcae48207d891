"""A full disk pauses a live run, it does not fail it (a local testbed: a master and two agents).

The master's runs directory is a tmpfs of 2 MB (root only: skipped elsewhere
with the reason; CI runs as root).  It is filled mid-run; the run is held (no
new start reaches an agent, the running tasks end and are taken in), the run's
document, ``events.jsonl`` and the client say why, and the master's reads and
polls go on.  Space is given back: the run goes on by itself and completes,
every task once.  Then the limit: a run held past ``run_hold_limit_s`` stops
``suspended`` and ``--resume`` completes it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rpiaas.client.progress import RunProgress
from rpiaas.live.journal import Journal
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from ..fulldisk import fill, tiny_fs, why_no_tmpfs

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# enough records that the journal needs a new page of the full tmpfs soon after it is filled
TASKS = 40


def _scenario() -> dict[str, Any]:
    return {"name": "full-disk", "seed": 1, "policy": "first_fit",
            "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1",
                                      "count": 2, "type": "rpi4b"}]},
            "workload": {"tasks": [{"id": i, "arrival_s": 0.25 * i, "cores": 1, "mem_mb": 64,
                                    "work_core_s": 1.5} for i in range(1, TASKS + 1)]}}


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        assert r.status == 200, url  # urllib raises on 4xx/5xx: a 500 fails the test here
        return json.load(r)


def _post_run(tb: LocalTestbed) -> str:
    req = urllib.request.Request(
        tb.master_url + "/api/v1/runs", method="POST",
        data=json.dumps({"scenario": _scenario(), "file": "full-disk.json"}).encode(),
        headers={"Authorization": f"Bearer {tb.master_token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.load(r)["id"])


def _started_on_agents(tb: LocalTestbed, run_id: str) -> set[str]:
    """The ids of the run's tasks the agents were asked to start (running or finished)."""
    out: set[str] = set()
    for name, proc in tb.current_agents().items():
        for doc in _get(proc.url + "/tasks", tb.node_token(name))["tasks"]:
            if str(doc["id"]).startswith(run_id + "."):
                out.add(str(doc["id"]))
    return out


def _until(what: str, check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not {what} after {timeout_s} s"
        time.sleep(0.1)


def test_a_full_disk_holds_the_run_and_it_goes_on_when_there_is_room(tmp_path: Path) -> None:
    why = why_no_tmpfs()
    if why is not None:
        pytest.skip(why)
    root = tmp_path / "tb"
    with tiny_fs(root / "runs", "2m") as runs, start_local_testbed(root, 2, poll_interval_s=0.25) as tb:
        url = tb.master_url
        run_id = _post_run(tb)

        def run() -> dict[str, Any]:
            doc: dict[str, Any] = _get(f"{url}/api/v1/runs/{run_id}")
            return doc

        _until("two tasks started", lambda: run()["running"] >= 2)
        filler = fill(runs)
        held = _until("held", lambda: (d := run())["held"] and d)
        assert held["state"] == "running" and "No space left on device" in held["held"], held
        progress = io.StringIO()
        shown = RunProgress(progress, tty=False)
        shown.update(held)
        # held: the master's reads answer, its poller polls, and no new start reaches an agent
        started = _started_on_agents(tb, run_id)
        rounds = _get(f"{url}/api/v1/summary")["poll_rounds"]
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end:
            doc = run()
            assert doc["state"] == "running" and doc["held"], doc
            shown.update(doc)
            _get(f"{url}/api/v1/nodes")
            _get(f"{url}/api/v1/nodes/node1.local.rpiaas.test/history")
            time.sleep(0.25)
        assert _started_on_agents(tb, run_id) == started
        assert run()["arrived"] > held["arrived"]  # arrivals go on, into the queue
        assert run()["held_s"] >= 3.0
        assert _get(f"{url}/api/v1/summary")["poll_rounds"] >= rounds + 8
        metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
        assert f'rpiaas_run_held{{run="{run_id}"}} 1.0' in metrics

        filler.unlink()  # room again: it goes on by itself
        done = _until("completed", lambda: (d := run())["state"] != "running" and d, timeout_s=60)
        shown.update(done)
        assert done["state"] == "completed" and done["held"] == "", done
        assert done["ended"] == TASKS
        lines = progress.getvalue()
        assert "run held: no space left for the run's files" in lines and "run goes on" in lines

        result = runs / run_id / "result"
        with (result / "tasks.csv").open() as f:
            rows = list(f)[1:]
        assert len(rows) == TASKS and all(",completed," in row for row in rows), rows
        # every task started once on the agents, and once in the journal
        assert len(_started_on_agents(tb, run_id)) == TASKS
        starts = [r["started"] for r in Journal.read(runs / run_id / "journal.jsonl") if "started" in r]
        assert sorted(starts) == list(range(1, TASKS + 1))
        holds = [json.loads(line) for line in (result / "events.jsonl").read_text().splitlines()
                 if '"hold"' in line]
        assert [h["hold"] for h in holds] == ["begin", "end"], holds
        assert "No space left on device" in holds[0]["reason"] and holds[1]["held_s"] >= 3.0
        record = json.loads((result / "run.json").read_text())
        assert record["live"]["held"]["holds"] == 1


def _master(root: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    with (root / "logs" / "master-2.log").open("ab") as out:
        return subprocess.Popen([script, "master", str(root / "master.yaml"), "--port", str(port), *extra],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=root)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _answers(url: str) -> bool:
    try:
        _get(url + "/api/v1/summary")
        return True
    except OSError:
        return False


def test_a_run_held_past_its_limit_is_suspended_and_resumed(tmp_path: Path) -> None:
    why = why_no_tmpfs()
    if why is not None:
        pytest.skip(why)
    root = tmp_path / "tb"
    with tiny_fs(root / "runs", "2m") as runs, start_local_testbed(root, 2, poll_interval_s=0.25) as tb:
        url, port = tb.master_url, tb.master.port
        # the testbed's master makes way for one that holds a run 2 s at most
        os.kill(tb.master.pid, signal.SIGTERM)
        _until("the first master gone", lambda: not _answers(url))
        with (root / "master.yaml").open("a") as f:
            f.write("run_hold_limit_s: 2\n")
        master = _master(root, port)
        try:
            _until("the master up", lambda: _answers(url))
            run_id = _post_run(tb)

            def run() -> dict[str, Any]:
                doc: dict[str, Any] = _get(f"{url}/api/v1/runs/{run_id}")
                return doc

            _until("two tasks started", lambda: run()["running"] >= 2)
            filler = fill(runs)
            stopped = _until("suspended", lambda: (d := run())["state"] != "running" and d)
            assert stopped["state"] == "suspended", stopped
            assert "over the limit of 2 s" in stopped["error"] and "--resume" in stopped["error"]
            assert not (runs / run_id / "result").exists()
            metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
            assert 'rpiaas_runs{state="suspended"} 1.0' in metrics

            filler.unlink()  # room again; a master started with --resume goes on with the run
            _stop(master)
            master = _master(root, port, "--resume")
            _until("the master up again", lambda: _answers(url))
            done = _until("completed", lambda: (d := run())["state"] != "running" and d, timeout_s=60)
            assert done["state"] == "completed" and done["ended"] == TASKS, done
            with (runs / run_id / "result" / "tasks.csv").open() as f:
                rows = list(f)[1:]
            assert len(rows) == TASKS and all(",completed," in row for row in rows), rows
            started = _started_on_agents(tb, run_id)
            assert sorted({int(i.split(".")[-2]) for i in started}) == list(range(1, TASKS + 1))
            assert len(started) == TASKS, sorted(started)  # none started twice
        finally:
            _stop(master)
