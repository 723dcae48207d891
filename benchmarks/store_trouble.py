"""The master while its history store is in trouble: what its API answers, whether it polls.

Usage::

    .venv/bin/python benchmarks/store_trouble.py                  # 3 agents, each fault 20 s
    .venv/bin/python benchmarks/store_trouble.py --fault-s 5      # shorter
    .venv/bin/python benchmarks/store_trouble.py --json out.json

A local testbed (``start_local_testbed``: the real ``rpiaas master`` and
``--agents`` agent processes on loopback, polled every 0.5 s) and, one after
the other, two faults on the master's ``history.db``, each for ``--fault-s``
seconds and followed by ``--recover-s`` seconds:

- **lock**: another process (this one) holds ``BEGIN EXCLUSIVE`` on the file;
- **read-only**: ``chattr +i`` on the file and its WAL (root, and a file
  system that keeps the flag, e.g. ext4; skipped otherwise).

During each fault a reader asks ``/api/v1/summary``, ``/api/v1/nodes`` and a
node's history every 0.5 s (10 s timeout): the answers by status, and the
slowest, per route.  Poll rounds in the fault come from ``/metrics`` (which
reads memory only); error lines are those of the master's log written during
the fault (``ERROR`` or a traceback's first line).  After the recovery
window: the samples in the file with a time inside the fault, per node
(those polled in the fault and written after it).

Run it with ``PYTHONPATH`` naming another checkout to measure that code (the
master is started as ``rpiaas master``, which imports ``rpiaas`` from
``PYTHONPATH`` first): the same command gives the before and after figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rpiaas.testbed.local import LocalTestbed, start_local_testbed

ROUTES = ("/api/v1/summary", "/api/v1/nodes", "/api/v1/nodes/{node}/history")


def _ask(url: str, timeout_s: float = 10.0) -> tuple[int | str, float]:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            r.read()
            status: int | str = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (TimeoutError, urllib.error.URLError, OSError):
        status = "timeout"
    return status, time.monotonic() - t0


def _rounds(url: str) -> int:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    match = re.search(r"^rpiaas_master_poll_rounds_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


def _reader(url: str, node: str, stop: threading.Event, out: dict[str, list[tuple[Any, float]]]) -> None:
    while not stop.is_set():
        for route in ROUTES:
            out.setdefault(route, []).append(_ask(url + route.format(node=node)))
        stop.wait(0.5)


@contextlib.contextmanager
def _lock(db: Path) -> Iterator[None]:
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@contextlib.contextmanager
def _read_only(db: Path) -> Iterator[None]:
    files = [db, db.with_name(db.name + "-wal")]
    for f in files:
        subprocess.run(["chattr", "+i", str(f)], check=True, capture_output=True)
    try:
        yield
    finally:
        for f in files:
            subprocess.run(["chattr", "-i", str(f)], check=False, capture_output=True)


def _errors(log: Path, start: int) -> int:
    text = log.read_text(errors="replace")[start:]
    return sum(1 for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback"))


def _kept(db: Path, t0: float, t1: float) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT n.name, count(*) FROM samples s JOIN nodes n ON n.id = s.node_id"
                           " WHERE s.time_s >= ? AND s.time_s < ? GROUP BY n.name", (t0, t1))
        return {str(name): int(k) for name, k in rows}


def fault(tb: LocalTestbed, kind: str, fault_s: float, recover_s: float) -> dict[str, Any]:
    db = tb.dir / "history.db"
    log = tb.dir / "logs" / "master.log"
    node = next(iter(tb.agents))
    seen: dict[str, list[tuple[Any, float]]] = {}
    stop = threading.Event()
    log_at = len(log.read_text(errors="replace"))
    rounds0 = _rounds(tb.master_url)
    inject = _lock if kind == "lock" else _read_only
    t0 = time.time()
    with inject(db):
        reader = threading.Thread(target=_reader, args=(tb.master_url, node, stop, seen))
        reader.start()
        time.sleep(fault_s)
        stop.set()
        reader.join()
    t1 = time.time()
    rounds = _rounds(tb.master_url) - rounds0
    errors = _errors(log, log_at)
    time.sleep(recover_s)
    answers = {}
    for route, got in seen.items():
        by: dict[str, int] = {}
        for status, _ in got:
            by[str(status)] = by.get(str(status), 0) + 1
        answers[route] = {"answers": by, "slowest_s": round(max(s for _, s in got), 3)}
    return {"fault": kind, "fault_s": round(t1 - t0, 1), "routes": answers,
            "poll_rounds": rounds, "rounds_expected": round((t1 - t0) / 0.5),
            "error_lines": errors, "samples_kept_per_node": _kept(db, t0 + 0.5, t1 - 0.5)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--fault-s", type=float, default=20.0)
    ap.add_argument("--recover-s", type=float, default=5.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    kinds = ["lock"]
    if os.geteuid() == 0:
        kinds.append("read-only")
    else:
        print("read-only: skipped (chattr +i needs root)", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="rpiaas-store-trouble-", dir="/var/tmp") as d, \
            start_local_testbed(Path(d), args.agents, poll_interval_s=0.5) as tb:
        time.sleep(2.0)  # a few rounds in the file first
        for kind in kinds:
            results.append(fault(tb, kind, args.fault_s, args.recover_s))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
