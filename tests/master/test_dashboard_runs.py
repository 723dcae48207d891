"""The dashboard follows a live run: in headless Chromium against a local testbed (real processes)."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rpiaas.testbed.local import LocalTestbed, start_local_testbed
from rpiaas.testbed.plan import DOMAIN

from .test_dashboard import Chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMES = [f"node{i}.{DOMAIN}" for i in (1, 2, 3)]
# Six one-core sleeps of 4 s, two arriving each second (at timescale 0.5: 8 scenario s, one a
# scenario second): each node holds tasks for a few seconds.
TASKS = [{"id": i + 1, "arrival_s": 1.0 * i, "cores": 1, "mem_mb": 64, "work_core_s": 8.0}
         for i in range(6)]


def _scenario() -> dict[str, Any]:
    return {"name": "dash", "seed": 3, "sample_interval_s": 0.5,
            "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 3,
                                      "type": "rpi4b"}]},
            "workload": {"tasks": TASKS}, "policy": "best_fit", "queue": "easy_backfill"}


def _start_run(tb: LocalTestbed) -> str:
    body = json.dumps({"scenario": _scenario(), "file": "dash.yaml", "timescale": 0.5,
                       "task_kind": "sleep", "id": "dash-best_fit-s3-live"}).encode()
    req = urllib.request.Request(tb.master_url + "/api/v1/runs", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {tb.master_token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201
        return str(json.loads(r.read())["id"])


def test_the_dashboard_shows_a_running_experiment_and_its_end(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.5) as tb:
        asyncio.run(_follow(tb, chromium, tmp_path))


async def _follow(tb: LocalTestbed, chromium: str, tmp_path: Path) -> None:
    base = tb.master_url
    async with Chromium(chromium, tmp_path) as browser:
        await browser.navigate(base + "/")
        await browser.wait_for(
            "document.body.dataset.state === 'ok'"
            " && document.querySelectorAll('tr.node[data-emulated=\"true\"]').length === 3")
        page = await browser.evaluate("""({
            none: !document.getElementById('runs-none').hidden,
            table: !document.getElementById('runs-table').hidden,
            clusters: Array.from(document.querySelectorAll('tbody.cluster'), b => ({
                domain: b.dataset.domain,
                head: b.querySelector('tr.cluster-head').textContent,
                nodes: Array.from(b.querySelectorAll('tr.node'), tr => tr.dataset.name)})),
            badges: Array.from(document.querySelectorAll('tr.node td.type .badge.emulated'),
                               b => b.textContent),
            tasks: Array.from(document.querySelectorAll('tr.node td.tasks'), td => td.textContent)})""")
        assert page["none"] and not page["table"]
        assert [(c["domain"], c["nodes"]) for c in page["clusters"]] == [(DOMAIN, NAMES)]
        assert "127.0.1.x" in page["clusters"][0]["head"] and "3 nodes" in page["clusters"][0]["head"]
        assert page["badges"] == ["emulated"] * 3 and page["tasks"] == ["—"] * 3

        run_id = await asyncio.to_thread(_start_run, tb)
        assert run_id == "dash-best_fit-s3-live"  # the id asked for (rpiaas run --live: its -o)
        row = f"tr.run[data-id=\"{run_id}\"]"
        # the run is running and a node shows a task of it
        running = await browser.wait_for(
            f"document.querySelector('{row}')?.dataset.state === 'running'"
            f" && Number(document.querySelector('{row}').dataset.running) > 0"
            f" && Array.from(document.querySelectorAll('tr.node'), tr => tr.dataset.tasks)"
            f".filter(Boolean)", timeout_s=20)
        assert running and all(t.split("/")[0] == run_id for cell in running for t in cell.split())
        shown_ids = {int(t.split("/")[1]) for cell in running for t in cell.split()}
        assert shown_ids <= {t["id"] for t in TASKS}
        cells = await browser.evaluate(f"""(() => {{
            const tr = document.querySelector('{row}');
            const head = Array.from(document.querySelectorAll('#runs-table thead th'),
                                    th => th.textContent);
            return {{text: tr.querySelector('td.id').textContent,
                     how: [head[1], head[2], head[3], tr.querySelector('td.policy').textContent,
                           tr.querySelector('td.kind').textContent,
                           tr.querySelector('td.timescale').textContent],
                     pace: tr.querySelector('td.timescale').title,
                     badge: tr.querySelector('.badge').textContent,
                     ended: tr.querySelector('td.ended').textContent,
                     files: tr.querySelector('td.files').textContent,
                     tasks: Array.from(document.querySelectorAll('tr.node td.tasks'),
                                       td => td.textContent)}};
        }})()""")
        assert cells["text"] == run_id and cells["badge"] == "running"
        # how the run runs: its policies, its task kind and its timescale
        assert cells["how"] == ["policy", "tasks", "timescale", "best_fit · queue easy_backfill", "sleep",
                                "0.5"], cells
        assert cells["pace"] == "2× faster than the scenario"
        assert cells["ended"].endswith(f" / {len(TASKS)}") and cells["files"] == "when done"
        assert any(t.startswith(run_id + ": ") for t in cells["tasks"]), cells
        assert not await browser.evaluate("document.getElementById('runs-table').hidden")

        # a node's own page: its tasks now, the emulated mark, a window fitted to minutes of data
        busy = await browser.evaluate(
            "Array.from(document.querySelectorAll('tr.node')).find(tr => tr.dataset.tasks)?.dataset.name")
        # (its tasks may have ended meanwhile: the page is checked all the same)
        await browser.navigate(f"{base}/nodes/{busy or NAMES[0]}")
        await browser.wait_for("document.body.dataset.state === 'ok'")
        node = await browser.evaluate("""({
            fitted: document.body.dataset.fittedWindowS,
            active: document.querySelector('#windows button.active').dataset.windowS,
            emulated: !document.getElementById('node-emulated').hidden,
            tasks: document.getElementById('cur-tasks').textContent})""")
        assert node["fitted"] == "900" and node["active"] == "900"
        assert node["emulated"] and (node["tasks"] == "—" or node["tasks"].startswith(run_id))
        await browser.navigate(base + "/")

        # the end: completed, 100 %, every task done, the files linked and served
        await browser.wait_for(f"document.querySelector('{row}')?.dataset.state === 'completed'",
                               timeout_s=40)
        end = await browser.evaluate(f"""(() => {{
            const tr = document.querySelector('{row}');
            return {{progress: tr.dataset.progress, ended: tr.querySelector('td.ended').textContent,
                     value: tr.querySelector('td.progress .value').textContent,
                     links: Array.from(tr.querySelectorAll('td.files a'), a => a.getAttribute('href')),
                     tasks: Array.from(document.querySelectorAll('tr.node'), tr => tr.dataset.tasks)}};
        }})()""")
        assert end["progress"] == "1.000" and end["value"] == "100 %"
        assert end["ended"] == f"{len(TASKS)} / {len(TASKS)}"
        assert f"/api/v1/runs/{run_id}/files/tasks.csv" in end["links"]
        assert f"/api/v1/runs/{run_id}/files/run.json" in end["links"]
        tasks_csv = await browser.evaluate(
            f"fetch('/api/v1/runs/{run_id}/files/tasks.csv').then(r => r.text())")
        assert tasks_csv.startswith("task_id") and len(tasks_csv.splitlines()) == len(TASKS) + 1
        await browser.wait_for("Array.from(document.querySelectorAll('tr.node'),"
                               " tr => tr.dataset.tasks).every(t => t === '')")
        assert await browser.evaluate("cspViolations") == []
        assert not browser.exceptions, browser.exceptions
