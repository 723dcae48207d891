"""A live run whose runs directory fills mid-run: held, failed or completed; what the API answers.

Usage (root: it mounts a tmpfs)::

    .venv/bin/python benchmarks/full_disk.py                  # 40 tasks, disk full for 10 s
    .venv/bin/python benchmarks/full_disk.py --full-s 30 --json out.json

A local testbed (the real ``rpiaas master`` and two agents on loopback,
polled every 0.25 s) whose ``runs`` directory is a tmpfs of ``--size`` (2m).
A run of ``--tasks`` one-core sleep tasks (1.5 core-seconds each, one every
0.25 s, ``first_fit``) starts; once two tasks run the tmpfs is filled to its
last byte, and ``--full-s`` seconds later the space is given back.  Reported:
the run's state over the fault (``held`` if the run says so), how many new
task starts reached the agents while the disk was full and while the run said
it was held (the journal holds the run at its first write the disk refuses:
the last page of its file may still take some records), the API's answers to
``/api/v1/summary``, ``/api/v1/nodes`` and a node's history meanwhile, poll
rounds meanwhile (from ``/metrics``), and at the end the run's state, its ended
tasks and how many distinct task ids the agents were asked to start.

Run it with ``PYTHONPATH`` naming another checkout to measure that code: the
same command gives the before and after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rpiaas.testbed.local import LocalTestbed, start_local_testbed


def _get(url: str, token: str | None = None) -> tuple[int | str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return "timeout", None


def _started(tb: LocalTestbed, run_id: str) -> set[str]:
    out: set[str] = set()
    for name, proc in tb.current_agents().items():
        status, doc = _get(proc.url + "/tasks", tb.node_token(name))
        if status == 200:
            out |= {str(t["id"]) for t in doc["tasks"] if str(t["id"]).startswith(run_id + ".")}
    return out


def _fill(path: Path) -> Path:
    target = path / "filler"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for block in (b"\0" * 4096, b"\0"):
            while True:
                try:
                    os.write(fd, block)
                except OSError:
                    break
    finally:
        os.close(fd)
    return target


def _rounds(url: str) -> int:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    match = re.search(r"^rpiaas_master_poll_rounds_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


def measure(root: Path, tasks: int, full_s: float) -> dict[str, Any]:
    scenario = {"name": "full-disk", "seed": 1, "policy": "first_fit",
                "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1",
                                          "count": 2, "type": "rpi4b"}]},
                "workload": {"tasks": [{"id": i, "arrival_s": 0.25 * i, "cores": 1, "mem_mb": 64,
                                        "work_core_s": 1.5} for i in range(1, tasks + 1)]}}
    with start_local_testbed(root, 2, poll_interval_s=0.25) as tb:
        url = tb.master_url
        req = urllib.request.Request(
            url + "/api/v1/runs", method="POST",
            data=json.dumps({"scenario": scenario, "file": "full-disk.json"}).encode(),
            headers={"Authorization": f"Bearer {tb.master_token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            run_id = str(json.load(r)["id"])
        node = next(iter(tb.agents))
        while (_get(f"{url}/api/v1/runs/{run_id}")[1] or {}).get("running", 0) < 2:
            time.sleep(0.1)
        filler = _fill(root / "runs")
        t_full = time.monotonic()
        started_at_fill = len(_started(tb, run_id))
        rounds0 = _rounds(url)
        answers: dict[str, dict[str, int]] = {}
        states: list[str] = []
        held_seen = ""
        started_at_hold = -1
        while time.monotonic() - t_full < full_s:
            for route in ("/api/v1/summary", "/api/v1/nodes", f"/api/v1/nodes/{node}/history"):
                status, _ = _get(url + route)
                key = route.replace(node, "{node}")
                answers.setdefault(key, {})
                answers[key][str(status)] = answers[key].get(str(status), 0) + 1
            _, doc = _get(f"{url}/api/v1/runs/{run_id}")
            if doc is not None:
                state = doc["state"] + (" (held)" if doc.get("held") else "")
                if doc.get("held") and not held_seen:
                    held_seen, started_at_hold = str(doc["held"]), len(_started(tb, run_id))
                if not states or states[-1] != state:
                    states.append(state)
            time.sleep(0.25)
        started_now = len(_started(tb, run_id))
        started_in_fault = started_now - started_at_fill
        started_in_hold = started_now - started_at_hold if started_at_hold >= 0 else None
        rounds = _rounds(url) - rounds0
        filler.unlink()
        deadline = time.monotonic() + 120
        while True:
            _, doc = _get(f"{url}/api/v1/runs/{run_id}")
            if (doc is not None and doc["state"] != "running") or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        return {"tasks": tasks, "full_s": full_s, "states_while_full": states, "held": held_seen,
                "starts_while_full": started_in_fault, "starts_while_held": started_in_hold,
                "answers_while_full": answers,
                "poll_rounds_while_full": rounds, "rounds_expected": round(full_s / 0.25),
                "final_state": doc["state"] if doc else None, "error": doc.get("error") if doc else None,
                "ended": doc.get("ended") if doc else None,
                "task_ids_started_on_agents": len(_started(tb, run_id))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--full-s", type=float, default=10.0)
    ap.add_argument("--size", default="2m")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("full_disk.py mounts a tmpfs: run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rpiaas-full-disk-", dir="/var/tmp") as d:
        runs = Path(d) / "runs"
        runs.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size}", "tmpfs", str(runs)], check=True)
        try:
            result = measure(Path(d), args.tasks, args.full_s)
        finally:
            subprocess.run(["umount", "-l", str(runs)], check=False)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
