"""History store speed: SQLite insert rate by batch size, and query latency over a day.

Usage::

    .venv/bin/python benchmarks/store_insert.py             # full run (about a minute)
    .venv/bin/python benchmarks/store_insert.py --quick     # smoke run (a few seconds)
    .venv/bin/python benchmarks/store_insert.py --batch-sizes 1,100,1000 --samples 200000
    .venv/bin/python benchmarks/store_insert.py --json out.json

**Insert.**  For each batch size ``B``, a fresh SQLite file (WAL,
``synchronous=NORMAL``) receives ``--samples`` samples of ``--nodes`` nodes,
given to ``add_samples`` ``B`` at a time with ``batch_size=B``, so each call
writes one transaction of ``B`` rows; the final ``close()`` is timed too.
Samples are built beforehand: ``samples/s`` is the store alone, and the cost
of building a ``Sample`` (validation included) is shown apart.  Batch size 1
runs at most 20,000 samples (one transaction each).

**Query.**  A file holds one day of samples at ``--interval-s`` (1 s: 86,400
per node) for ``--day-nodes`` nodes.  ``history(node, day)`` is timed raw and
at 60 s and 3600 s resolution, and ``latest()`` for all nodes; each is the
median of ``--repeat`` runs (warm page cache, as on a running master).
Finally ``compact(end of day, 60 s)`` is timed once.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from rpiaas.store import Sample, SQLiteStore

DAY_S = 86_400
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def make_samples(nodes: int, count: int, interval_s: float, start_s: float = T0) -> list[Sample]:
    """``count`` samples round-robin over ``nodes`` nodes, ``interval_s`` apart per node."""
    out = []
    for i in range(count):
        step, n = divmod(i, nodes)
        x = (i * 7919 % 1000) / 1000
        out.append(Sample(node=f"pi{n:03d}.cluster", time_s=start_s + step * interval_s,
                          cpu_util=x, mem_used_mb=512.0 + 3000.0 * x, mem_total_mb=4096.0,
                          load1=4.0 * x, disk_used_ratio=0.42, temperature_c=45.0 + 20.0 * x,
                          cpu_per_core=(x, 1.0 - x, x / 2, 0.5)))
    return out


def insert_rate(samples: list[Sample], batch: int, folder: Path) -> dict[str, Any]:
    path = folder / f"insert-{batch}.db"
    store = SQLiteStore(path, batch_size=batch, flush_interval_s=3600.0)
    t = time.perf_counter()
    for i in range(0, len(samples), batch):
        store.add_samples(samples[i:i + batch])
    store.close()
    elapsed = time.perf_counter() - t
    size = path.stat().st_size
    return {"batch_size": batch, "samples": len(samples), "seconds": elapsed,
            "samples_per_s": len(samples) / elapsed, "bytes_per_sample": size / len(samples)}


def median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, result


def query_latency(day_nodes: int, interval_s: float, repeat: int,
                  folder: Path) -> dict[str, Any]:
    per_node = int(DAY_S / interval_s)
    path = folder / "day.db"
    with SQLiteStore(path, batch_size=10_000) as store:
        for n in range(day_nodes):  # node by node keeps the list of samples small
            batch = make_samples(1, per_node, interval_s)
            store.add_samples(replace(s, node=f"pi{n:03d}.cluster") for s in batch)
    out: dict[str, Any] = {"nodes": day_nodes, "samples_per_node": per_node,
                           "file_mb": path.stat().st_size / 2**20, "queries": []}
    with SQLiteStore(path) as store:
        node = "pi000.cluster"
        resolutions: list[tuple[str, float | None]] = [("raw", None), ("60 s", 60.0),
                                                        ("3600 s", 3600.0)]
        for label, res in resolutions:
            ms, rows = median_ms(partial(store.history, node, T0, T0 + DAY_S, res), repeat)
            assert isinstance(rows, list)
            out["queries"].append({"query": f"history, one node, one day, {label}",
                                   "ms": ms, "rows": len(rows)})
        ms, latest = median_ms(store.latest, repeat)
        assert isinstance(latest, dict)
        out["queries"].append({"query": f"latest(), {day_nodes} nodes", "ms": ms,
                               "rows": len(latest)})
        t = time.perf_counter()
        result = store.compact(T0 + DAY_S, 60.0)
        out["compact"] = {"seconds": time.perf_counter() - t, "replaced": result.replaced,
                          "written": result.written}
        ms, rows = median_ms(lambda: store.history(node, T0, T0 + DAY_S, 60.0), repeat)
        assert isinstance(rows, list)
        out["queries"].append({"query": "history, one node, one day, 60 s, after compact",
                               "ms": ms, "rows": len(rows)})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=500_000, help="samples per insert run")
    p.add_argument("--nodes", type=int, default=100, help="nodes in the insert runs")
    p.add_argument("--batch-sizes", default="1,10,100,1000,10000")
    p.add_argument("--day-nodes", type=int, default=10, help="nodes in the one-day file")
    p.add_argument("--interval-s", type=float, default=1.0, help="sampling interval of the day")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="50k samples, 2 nodes x 1 day at 5 s")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.day_nodes, args.interval_s, args.repeat = 50_000, 2, 5.0, 3
    batches = [int(b) for b in args.batch_sizes.split(",")]

    print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version},"
          f" {platform.machine()}, {platform.system()}")
    t = time.perf_counter()
    samples = make_samples(args.nodes, args.samples, 1.0)
    build = (time.perf_counter() - t) / len(samples)
    print(f"building a Sample (validated): {build * 1e6:.2f} µs"
          f" ({1 / build:,.0f} samples/s)\n")
    report: dict[str, Any] = {"python": platform.python_version(),
                              "sqlite": sqlite3.sqlite_version,
                              "sample_build_us": build * 1e6, "insert": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'batch size':>10}  {'samples':>9}  {'seconds':>8}  {'samples/s':>10}  bytes/sample")
        for batch in batches:
            part = samples[:20_000] if batch == 1 else samples
            r = insert_rate(part, batch, folder)
            report["insert"].append(r)
            print(f"{batch:>10,}  {r['samples']:>9,}  {r['seconds']:>8.2f}"
                  f"  {r['samples_per_s']:>10,.0f}  {r['bytes_per_sample']:>11.0f}")
        del samples
        q = query_latency(args.day_nodes, args.interval_s, args.repeat, folder)
    report["query"] = q
    print(f"\none day: {q['nodes']} nodes x {q['samples_per_node']:,} samples,"
          f" file {q['file_mb']:.0f} MiB")
    for row in q["queries"]:
        print(f"  {row['query']:<52} {row['ms']:>9.1f} ms  {row['rows']:>7,} rows")
    c = q["compact"]
    print(f"  compact(end of day, 60 s): {c['seconds']:.2f} s,"
          f" {c['replaced']:,} rows -> {c['written']:,}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
