"""Power switched for real on a local testbed: ``consolidate`` with the ``process`` driver.

Real processes only: ``start_local_testbed`` (a master and two agents on
loopback, configured with ``power: {driver: process}``), a live run through
the master's API, and headless Chromium on the dashboard.  Six one-core tasks
need both nodes; a lull lets ``consolidate`` switch one node off (its agent
process ends; ``min_on: 1`` keeps the other); six more need it back (a new
agent process starts and reports its boot).  Checked against the processes themselves: the pids, their start
times and the master's history.
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.power import driver_for
from rpiaas.power.detached import pid_alive
from rpiaas.power.drivers.process import running_pid
from rpiaas.store import open_store
from rpiaas.testbed.local import POWER_DIR, LocalTestbed, start_local_testbed
from rpiaas.testbed.plan import DOMAIN

from ..master.test_dashboard import Chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration]

N1, N2 = (f"node{i}.{DOMAIN}" for i in (1, 2))
# a burst that needs both nodes (4 + 2 cores), a lull, the same burst again
TASKS = [{"id": i + 1, "arrival_s": (0.0 if i < 6 else 14.0) + 0.1 * (i % 6), "cores": 1,
          "mem_mb": 64, "work_core_s": 3.0} for i in range(12)]


def _scenario() -> dict[str, Any]:
    return {"name": "power", "seed": 3, "sample_interval_s": 0.5,
            "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 2,
                                      "type": "rpi4b"}]},
            "workload": {"tasks": TASKS},
            "policy": {"name": "consolidate", "params": {"idle_timeout_s": 2, "min_on": 1}}}


def _wait_offline(tb: LocalTestbed, name: str) -> None:
    deadline = time.monotonic() + 20
    while _get(tb, f"/api/v1/nodes/{name}")["online"] is not False:
        assert time.monotonic() < deadline, f"{name} still online"
        time.sleep(0.2)


def _post(tb: LocalTestbed, path: str, doc: dict[str, Any]) -> Any:
    req = urllib.request.Request(tb.master_url + path, data=json.dumps(doc).encode(),
                                 method="POST",
                                 headers={"Authorization": f"Bearer {tb.master_token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _get(tb: LocalTestbed, path: str) -> Any:
    with urllib.request.urlopen(tb.master_url + path, timeout=10) as r:
        return json.loads(r.read())


_POWER = """Object.fromEntries(Array.from(document.querySelectorAll('tr.node'),
    tr => [tr.dataset.name, tr.dataset.power]))"""
# each node's allocated cores and its power cell: no meter here, so never a figure
_CELLS = """Array.from(document.querySelectorAll('tr.node'), tr => ({
    cores: tr.querySelector('td.alloc-cores').textContent,
    mem: tr.querySelector('td.alloc-mem').textContent,
    watts: tr.querySelector('td.watts').textContent}))"""


async def _run_watched(tb: LocalTestbed, chromium: str | None, tmp: Path
                       ) -> tuple[str, dict[str, list[str]], dict[str, set[int]], set[str]]:
    """Start the run; follow it on the dashboard (each node's power states, in order) and in
    the processes (every pid each node's agent had); its id once it completed."""
    seen: dict[str, list[str]] = {}
    pids: dict[str, set[int]] = {N1: set(), N2: set()}
    cells: set[str] = set()  # the allocated cores and memory cells seen, e.g. "4 / 4 · 256 / 4096 MB"
    run_id = ""

    async def follow(browser: Chromium | None) -> None:
        nonlocal run_id
        run_id = (await asyncio.to_thread(_post, tb, "/api/v1/runs", {
            "scenario": _scenario(), "file": "power.yaml", "timescale": 1.0,
            "task_kind": "sleep"}))["id"]
        deadline = time.monotonic() + 120
        while True:
            for name, had in pids.items():
                now = running_pid(tb.dir / POWER_DIR, name)
                if now is not None:
                    had.add(now[0])
            if browser is not None:
                for row in await browser.evaluate(_CELLS):
                    assert row["watts"] == "—", row
                    cells.add(f"{row['cores']} · {row['mem']}")
                for name, state in (await browser.evaluate(_POWER)).items():
                    states = seen.setdefault(name, [])
                    if state and (not states or states[-1] != state):
                        states.append(state)
            state = (await asyncio.to_thread(_get, tb, f"/api/v1/runs/{run_id}"))["state"]
            if state != "running":
                assert state == "completed", state
                return
            assert time.monotonic() < deadline, "the run did not end in 120 s"
            await asyncio.sleep(0.1)

    if chromium is None:
        await follow(None)
    else:
        async with Chromium(chromium, tmp) as browser:
            await browser.navigate(tb.master_url + "/")
            await browser.wait_for("document.body.dataset.state === 'ok'"
                                   " && document.querySelectorAll('tr.node').length === 2")
            await follow(browser)
            assert not browser.exceptions, browser.exceptions
    return run_id, seen, pids, cells


BOOT_DELAY_S = 2.0


def _slow_boots(tb: LocalTestbed) -> None:
    """Each agent started again waits BOOT_DELAY_S first, as a Pi's firmware and kernel do
    before its agent starts (an agent alone starts in a fraction of a second, too short for
    the dashboard, which refreshes every poll interval, to show it booting)."""
    for name in (N1, N2):
        path = tb.dir / POWER_DIR / f"{name}.json"
        cmd = json.loads(path.read_text())
        cmd["argv"] = ["sh", "-c", f'sleep {BOOT_DELAY_S}; exec "$0" "$@"', *cmd["argv"]]
        path.write_text(json.dumps(cmd))


def test_consolidate_switches_agents_off_and_on_for_real(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.5) as tb:
        _slow_boots(tb)
        first = {name: running_pid(tb.dir / POWER_DIR, name) for name in (N1, N2)}
        assert all(first.values()), first
        assert [p[0] for p in first.values() if p] == [tb.agents[N1].pid, tb.agents[N2].pid]
        run_id, seen, pids, cells = asyncio.run(_run_watched(tb, chromium, tmp_path))
        run_dir = tb.dir / "runs" / run_id
        result = run_dir / "result"
        now = {name: running_pid(tb.dir / POWER_DIR, name) for name in (N1, N2)}
        t0 = float(json.loads((run_dir / "journal.jsonl").read_text().splitlines()[0])["t0"])

        # every task exactly once, completed
        rows = list(csv.DictReader((result / "tasks.csv").open()))
        assert sorted(int(r["task_id"]) for r in rows) == [t["id"] for t in TASKS]
        assert {r["state"] for r in rows} == {"completed"}

        # the control plane switched one node off in the lull and on for the second burst
        events = [json.loads(line) for line in (result / "events.jsonl").read_text().splitlines()]
        # (the other node may be switched off at the end, idle while the last tasks run)
        cycled = [e["node"] for e in events if e.get("act") == "power_on"]
        assert len(cycled) == 1, cycled
        off, kept = cycled[0], ({N1, N2} - set(cycled)).pop()
        kept_offs = [e["t"] for e in events if e.get("act") == "power_off" and e["node"] == kept]
        assert len(kept_offs) <= 1 and all(
            t >= max(float(r["end_s"]) for r in rows if r["node"] == kept) for t in kept_offs)
        offs = [e["t"] for e in events if e.get("act") == "power_off" and e["node"] == off]
        ons = [e["t"] for e in events if e.get("act") == "power_on" and e["node"] == off]
        boots = [e["t"] for e in events if e.get("ev") == "booted" and e["node"] == off]
        assert len(offs) == 1 and len(ons) == 1 and len(boots) == 1, (offs, ons, boots)
        assert offs[0] < ons[0] < boots[0]
        assert not [e for e in events if e.get("power") == "error"]
        # no task starts on it while it is off or booting, and some start after its boot
        starts = [e["t"] for e in events if e.get("act") == "start" and e["node"] == off]
        assert not [t for t in starts if offs[0] < t < boots[0]], starts
        assert [t for t in starts if t >= boots[0]]
        assert not [r for r in rows if r["node"] == off
                    and offs[0] < float(r["start_s"]) < boots[0]]

        # and so did the processes: its agent ended, a new one started at the switch-on and
        # reported its boot; the other node's agent ran throughout (until its switch-off)
        assert pids[kept] == {p[0] for p in [first[kept]] if p}
        assert now[kept] == (None if kept_offs else first[kept])
        old, new = first[off], now[off]
        assert old is not None and new is not None and new[0] != old[0]
        assert not pid_alive(*old)
        assert pids[off] == {old[0], new[0]}, pids
        # the pid file is written as the process starts (its /proc start time is only to
        # the second: the kernel's boot time is)
        started = (tb.dir / POWER_DIR / f"{off}.pid").stat().st_mtime
        assert t0 + ons[0] <= started <= t0 + boots[0], (t0 + ons[0], started, t0 + boots[0])
        log = Path(tb.agents[off].log).read_text()
        assert log.count("\n--- ") + log.startswith("--- ") == 2  # two starts of its agent

        # the master's history: switched off, switched on, the boot report, no error
        store = open_store(str(tb.dir / "history.db"))
        try:
            kinds = [(e.kind, e.time_s) for e in store.events(off)
                     if e.kind in ("power_off", "power_on", "boot", "power_error")]
        finally:
            store.close()
        assert [k for k, _ in kinds] == ["boot", "power_off", "power_on", "boot"], kinds
        off_s, on_s, boot_s = (t for _, t in kinds[1:])
        # time off and the boot as the run counted them, against the processes' own times
        measured_boot_s = boots[0] - ons[0]
        assert BOOT_DELAY_S < measured_boot_s < BOOT_DELAY_S + 10
        assert abs((t0 + boots[0]) - boot_s) < 0.5
        assert t0 + offs[0] <= off_s <= t0 + ons[0]
        assert started <= boot_s
        doc = _get(tb, f"/api/v1/nodes/{off}")
        assert doc["power_state"] == "on" and doc["last_power_error"] is None
        assert doc["last_boot"]["power_on_s"] == pytest.approx(boot_s - on_s, abs=0.1)

        # the dashboard showed it go off, boot and come back on; the other stayed on
        if chromium is not None:
            states = seen[off]
            assert "off" in states and "booting" in states, seen
            assert states.index("off") < states.index("booting") < len(states) - 1, seen
            assert states[-1] == "on", seen
            assert seen[kept] in (["on"], ["on", "off"]), seen
            # allocated cores and memory beside the measured: a full node (4 one-core tasks of
            # 64 MB) and an idle one were shown
            assert "4 / 4 · 256 / 4096 MB" in cells and "0 / 4 · 0 / 4096 MB" in cells, cells
        # a node left off (by the run's end, or here by its driver) is switched on before the
        # next run starts: that run finds every node on, none down
        if now[kept] is not None:
            node = next(n for n in load_cluster(tb.dir / "cluster.yaml").nodes if n.name == kept)
            asyncio.run(driver_for(node).off())  # type: ignore[union-attr]
        assert running_pid(tb.dir / POWER_DIR, kept) is None
        _wait_offline(tb, kept)
        second = _post(tb, "/api/v1/runs", {"scenario": {**_scenario(), "name": "after",
                                                         "workload": {"tasks": TASKS[:2]},
                                                         "policy": "best_fit"},
                                            "file": "after.yaml", "task_kind": "sleep"})["id"]
        deadline = time.monotonic() + 60
        while _get(tb, f"/api/v1/runs/{second}")["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert _get(tb, f"/api/v1/runs/{second}")["state"] == "completed"
        after = (tb.dir / "runs" / second / "result" / "events.jsonl").read_text()
        assert "node_down" not in after and "offline at start" not in after
        assert running_pid(tb.dir / POWER_DIR, kept) is not None
        assert _get(tb, f"/api/v1/nodes/{kept}")["power_state"] == "on"
        print(f"\n{off}: off {ons[0] - offs[0]:.1f} s, boot (switch-on to report) "
              f"{measured_boot_s:.2f} s")
    # down stopped the agent the master started
    assert not pid_alive(*new)
