"""Where a master's memory goes, run after run: live runs back to back, the memory split after each.

Usage::

    .venv/bin/python benchmarks/run_memory.py                       # 20 runs of 300 tasks, 100 nodes
    .venv/bin/python benchmarks/run_memory.py --runs 40 --json out.json
    .venv/bin/python benchmarks/run_memory.py --trace 25 --snapshot-at 5 --top 15   # and what grew, by traceback

An emulated testbed (``start_emulated_testbed``: the emulator's process serving
``--nodes`` nodes) whose master runs in THIS process (its own thread and event
loop, on the testbed's master config), so that after each live run (as
``benchmarks/soak.py``'s: ``--run-tasks`` one-core ``sleep`` tasks of 1-3 s at
20/s, ``least_loaded``), once it has ended and ``--settle-s`` later, the
process's memory can be taken apart:

- ``rss_mb`` (``/proc/self/statm``) and its resident parts (``/proc/self/smaps``):
  ``heap_mb`` (glibc's main heap), ``anon_mb`` (anonymous maps: pymalloc's
  arenas, the threads' malloc heaps, large blocks), ``file_mb`` (code);
- glibc's ``mallinfo2``: ``malloc_in_use_mb``, ``malloc_free_mb`` (free chunks
  it keeps, whether or not their pages were handed back);
- pymalloc (``sys._debugmallocstats``): ``pymalloc_arenas_mb`` (1 MiB arenas
  allocated) and ``pymalloc_used_mb`` (bytes in allocated blocks);
- ``sqlite_mb`` (``sqlite3_memory_used``: the history store's page cache and
  statements), ``objects`` (``gc.get_objects()`` after a ``gc.collect()``),
  and with ``--trace`` ``traced_mb`` (tracemalloc);
- what the master keeps per run: ``runs_kept`` (its run manager's records),
  ``runs_running``, ``trims`` (free pages handed back after runs) and the
  poller's latency window (``latency_window``, bounded).

The process also holds this script's own HTTP client: a few hundred kB, the
same after every run.  With ``--snapshot-at K`` (needs ``--trace``) the
tracemalloc snapshots after run K and after the last run are compared,
grouped by traceback, and the ``--top`` groups that grew most printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from soak import get, scenario

from rpiaas.master import create_app
from rpiaas.master.config import load_master_config
from rpiaas.master.keys import POLLER, RUNS
from rpiaas.testbed.emulated import start_emulated_testbed
from rpiaas.testbed.procs import stop_all

_MB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    """glibc's ``mallinfo2``: bytes in use and free in its heaps (empty where there is none)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    mi = fn()
    return {"malloc_in_use_mb": mi.uordblks / _MB, "malloc_free_mb": mi.fordblks / _MB,
            "malloc_mmapped_mb": mi.hblkhd / _MB}


def _pymalloc() -> dict[str, float]:
    """pymalloc's arenas and the bytes in their allocated blocks (``sys._debugmallocstats``,
    which writes to stderr: read back from a temporary file)."""
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    out = {}
    for key, name in (("# arenas allocated current", "pymalloc_arenas"), ("# bytes in allocated blocks", "used")):
        m = re.search(re.escape(key) + r"\s*=\s*([\d,]+)", text)
        if m:
            out[name] = int(m.group(1).replace(",", ""))
    if "pymalloc_arenas" not in out:
        return {}
    arena_b = 1 << 20 if sys.version_info >= (3, 10) else 256 << 10
    return {"pymalloc_arenas_mb": out["pymalloc_arenas"] * arena_b / _MB, "pymalloc_used_mb": out.get("used", 0) / _MB}


def _sqlite_mb() -> float | None:
    """What SQLite has allocated in this process (page caches, statements), or None."""
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)
        fn = lib.sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int64
    return int(fn()) / _MB


def _smaps() -> dict[str, float]:
    """This process's resident memory by kind of map."""
    out = {"heap_mb": 0.0, "anon_mb": 0.0, "file_mb": 0.0}
    kind: str | None = None
    with open("/proc/self/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
                kind = "heap_mb" if name == "[heap]" else "anon_mb" if not name else \
                    "file_mb" if name.startswith("/") else None
            elif line.startswith("Rss:") and kind is not None:
                out[kind] += int(line.split()[1]) / 1024
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MB


class InProcessMaster:
    """The master of ``config_path`` served by an event loop in a thread of this process."""

    def __init__(self, config_path: Path, port: int) -> None:
        config = load_master_config(config_path)
        self.app = create_app(config)
        self.host = config.listen[0]
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app, access_log=None)
        self.thread = threading.Thread(target=self.loop.run_forever, name="master", daemon=True)

    def __enter__(self) -> InProcessMaster:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def kept(self) -> dict[str, int]:
        """The objects (after a ``gc.collect()``) and what the master keeps that could grow with
        runs, taken on its own loop: ``gc.get_objects()`` from another thread can hold a tuple
        the master is building, which then fails to grow (SystemError)."""
        async def read() -> dict[str, int]:
            gc.collect()
            runs, poller = self.app[RUNS], self.app[POLLER]
            return {"objects": len(gc.get_objects()), "runs_kept": len(runs.runs),
                    "runs_running": len(runs.running()), "trims": runs.trims,
                    "latency_window": len(poller.latency.latencies_s)}
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(30)


def measure(master: InProcessMaster) -> dict[str, Any]:
    kept = master.kept()
    out: dict[str, Any] = {"rss_mb": _rss_mb(), **_smaps(), **_mallinfo(), **_pymalloc()}
    out["sqlite_mb"] = _sqlite_mb()
    if tracemalloc.is_tracing():
        out["traced_mb"] = tracemalloc.get_traced_memory()[0] / _MB
    out.update(kept)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def grown(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> Iterator[str]:
    """The ``top`` tracebacks whose memory grew most from ``before`` to ``after``, each with
    its innermost frames (this package's first)."""
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    stats = after.filter_traces(skip).compare_to(before.filter_traces(skip), "traceback")
    yield f"traced: {sum(s.size_diff for s in stats) / 1024:+.1f} kB in all"
    for s in stats[:top]:
        frames = [f for f in s.traceback if "rpiaas" in f.filename][-4:] or list(s.traceback)[-2:]
        where = " <- ".join(f"{f.filename.split('/')[-1]}:{f.lineno}" for f in reversed(frames))
        yield f"{s.size_diff / 1024:+9.1f} kB {s.count_diff:+6d} blocks (now {s.size / 1024:.1f} kB)  {where}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--run-tasks", type=int, default=300)
    p.add_argument("--settle-s", type=float, default=3.0, help="wait after a run ended before measuring")
    p.add_argument("--trace", type=int, default=0, metavar="FRAMES", help="tracemalloc with this many frames")
    p.add_argument("--snapshot-at", type=int, metavar="K", help="compare snapshots after run K and the last")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.snapshot_at is not None and not (args.trace and 1 <= args.snapshot_at < args.runs):
        p.error("--snapshot-at K needs --trace and 1 <= K < --runs")
    logging.basicConfig(level=logging.WARNING)
    if args.trace:
        tracemalloc.start(args.trace)
    rows: list[dict[str, Any]] = []
    snapshot: tracemalloc.Snapshot | None = None
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rpiaas-run-memory-") as d:
        folder = Path(d)
        tb = start_emulated_testbed(folder, args.nodes, timeout_s=120.0)
        try:
            stop_all([tb.master], 10.0)  # its master, in this process instead (same config and port)
            cluster = yaml.safe_load((folder / "cluster.yaml").read_text())
            with InProcessMaster(folder / "master.yaml", tb.master.port) as master:
                while get(tb.master_url + "/api/v1/summary")["online"] < args.nodes:
                    time.sleep(0.5)
                rows.append({"run": 0, "state": "-", **measure(master)})
                print(json.dumps(rows[-1]), flush=True)
                for k in range(1, args.runs + 1):
                    run = get(tb.master_url + "/api/v1/runs", tb.master_token,
                              {"scenario": scenario(cluster, args.run_tasks, k), "timescale": 1,
                               "task_kind": "sleep"})
                    while (state := get(f"{tb.master_url}/api/v1/runs/{run['id']}",
                                        tb.master_token)["state"]) == "running":
                        time.sleep(1.0)
                    time.sleep(args.settle_s)
                    rows.append({"run": k, "state": state, **measure(master)})
                    print(json.dumps(rows[-1]), flush=True)
                    if args.snapshot_at is not None and k in (args.snapshot_at, args.runs):
                        taken = tracemalloc.take_snapshot()
                        if snapshot is not None:
                            report = list(grown(snapshot, taken, args.top))
                        snapshot = taken
        finally:
            with contextlib.suppress(Exception):
                tb.stop()
    for line in report:
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"nodes": args.nodes, "run_tasks": args.run_tasks, "rows": rows,
                                               "grown": report}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
