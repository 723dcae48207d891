"""The master polling 200 agents once a second: its CPU share, poll latency, and history writes.

Usage::

    .venv/bin/python benchmarks/master_poll.py                 # 200 agents, 30 s (about a minute)
    .venv/bin/python benchmarks/master_poll.py --quick         # smoke run: 20 agents, 5 s, 20k samples
    .venv/bin/python benchmarks/master_poll.py --agents 100 --seconds 120
    .venv/bin/python benchmarks/master_poll.py --check         # exit 1 when a target is missed
    .venv/bin/python benchmarks/master_poll.py --json out.json

**Polling.**  One child process (this script with ``--serve-agents N``)
serves a single ``rpiaas_agent`` app on ``N`` loopback ports, one
``TCPSite`` each: ``N`` agents over real HTTP for the memory of one.  The real
``rpiaas master`` runs as a second process with ``poll_interval_s: 1``, its
SQLite history in a temporary directory, and one ``agents:`` entry per node
(``127.0.0.1:PORT``; nothing leaves loopback).  Once every node is online and
``--warmup`` seconds have passed, for ``--seconds`` of wall time:

- the master's CPU time (user + system, all its threads, psutil) over the
  wall time, in % of one core; its RSS at the end and its peak (sampled each
  second); the agent server's CPU share and RSS, for context;
- poll rounds done in the window against ``seconds / interval``, and the
  polls that failed (from ``GET /api/v1/summary`` before and after);
- poll latency p50/p99/max and the last round's duration from the summary at
  the end: the master's own figures, request start to parsed JSON, over its
  last 10,000 answered polls (the window and the rounds just before it);
- samples with a time in the window in the history file, counted through
  ``open_store(...).history`` after the master stopped: samples/s stored.

The benchmark itself asks the master for its summary only at the window's
two ends, so it adds nothing to the master's load in between.

**Insert.**  A fresh SQLite store (``open_store``, as the master opens it)
receives ``--insert-samples`` samples of 200 nodes (4 cores, a temperature),
built beforehand, as ``add_samples(batch)`` + ``flush()`` per batch: 200 (one
poll round of 200 nodes) and 1000.  Target: >= 20,000 samples/s.

``--check`` exits 1 when the insert rate misses its target, any poll
failed, or the rounds fell short of the expected count by more than 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from rpiaas.store import Sample, open_store

TARGET_INSERT_PER_S = 20_000.0
MAX_ROUND_SHORTFALL = 0.10
INSERT_BATCHES = (200, 1000)
INSERT_NODES = 200
DOMAIN = "bench.rpiaas.test"
MB = 1024 * 1024
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


# ---------------------------------------------------------------- the agent server (child)
async def _serve_agents(count: int, port_file: Path) -> None:
    from aiohttp import web
    from rpiaas_agent import Config, create_app

    folder = port_file.parent
    sysfs = folder / "sysfs-empty"  # no thermal zones: the temperature is None, as off a Pi
    sysfs.mkdir(exist_ok=True)
    config = Config(host="127.0.0.1", port=0, name="bench-agent", sysfs_root=str(sysfs),
                    vcgencmd="", disk_path=str(folder))
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        for _ in range(count):
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        ports = [int(address[1]) for address in runner.addresses]
        part = port_file.with_suffix(".part")  # renamed whole: the parent never reads half a list
        part.write_text("".join(f"{p}\n" for p in ports))
        part.rename(port_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_command() -> list[str]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "rpiaas"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("RPIAAS_AGENT_", "RPIAAS_MASTER_"))}


def start(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=clean_env(), cwd=cwd)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def fail(what: str, log: Path) -> SystemExit:
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    return SystemExit(f"{what}\n--- {log.name} (end) ---\n{tail}")


def wait_ports(proc: subprocess.Popen[bytes], port_file: Path, log: Path,
               timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while not port_file.exists():
        if proc.poll() is not None:
            raise fail(f"the agent server exited with {proc.returncode}", log)
        if time.monotonic() > deadline:
            raise fail(f"the agent server listed no ports within {timeout_s:g} s", log)
        time.sleep(0.05)
    return [int(line) for line in port_file.read_text().split()]


def summary(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/summary", timeout=5) as r:
        data = json.loads(r.read())
    assert isinstance(data, dict)
    return data


def wait_online(proc: subprocess.Popen[bytes], port: int, nodes: int, log: Path,
                timeout_s: float = 60.0) -> float:
    """Seconds until the master reports every node online."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise fail(f"the master exited with {proc.returncode}", log)
        try:
            if summary(port)["online"] == nodes:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise fail(f"not all {nodes} nodes online within {timeout_s:g} s", log)


def write_master_config(folder: Path, ports: list[int], listen_port: int) -> Path:
    agents = "".join(f'  node{i}.{DOMAIN}: "127.0.0.1:{p}"\n' for i, p in enumerate(ports, 1))
    path = folder / "master.yaml"
    path.write_text(
        "cluster:\n"
        "  clusters:\n"
        f"    - {{domain: {DOMAIN}, prefix: 127.0.1, count: {len(ports)}, type: rpi4b}}\n"
        "poll_interval_s: 1\n"
        f"store: {folder / 'history.db'}\n"
        f"agents:\n{agents}"
        f"listen: 127.0.0.1:{listen_port}\n")
    return path


def cpu_s(times: Any) -> float:
    return float(times.user + times.system)


# ---------------------------------------------------------------- polling
def measure_polling(agents: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    interval_s = 1.0
    with tempfile.TemporaryDirectory(prefix="rpiaas-master-poll-") as tmp:
        folder = Path(tmp)
        port_file = folder / "agent-ports.txt"
        agent_log, master_log = folder / "agents.log", folder / "master.log"
        server = start([sys.executable, str(Path(__file__).resolve()), "--serve-agents",
                        str(agents), "--port-file", str(port_file)], agent_log, folder)
        master: subprocess.Popen[bytes] | None = None
        try:
            ports = wait_ports(server, port_file, agent_log)
            if len(set(ports)) != agents:
                raise fail(f"expected {agents} distinct ports, got {len(set(ports))}", agent_log)
            port = free_port()
            config = write_master_config(folder, ports, port)
            master = start([*master_command(), "master", str(config)], master_log, folder)
            online_after_s = wait_online(master, port, agents, master_log)
            time.sleep(warmup_s)
            mproc, aproc = psutil.Process(master.pid), psutil.Process(server.pid)
            before = summary(port)
            m0, a0 = cpu_s(mproc.cpu_times()), cpu_s(aproc.cpu_times())
            wall0, t0 = time.time(), time.monotonic()
            peak_rss = 0
            while (left := t0 + seconds - time.monotonic()) > 0:
                peak_rss = max(peak_rss, mproc.memory_info().rss)
                time.sleep(min(1.0, left))
            m1, a1 = cpu_s(mproc.cpu_times()), cpu_s(aproc.cpu_times())
            wall1, t1 = time.time(), time.monotonic()
            after = summary(port)
            rss, agent_rss = mproc.memory_info().rss, aproc.memory_info().rss
            master_code = stop(master)
        finally:
            if master is not None:
                stop(master)
            stop(server)
        with open_store(str(folder / "history.db")) as store:
            stored = sum(len(store.history(n, wall0, wall1)) for n in store.nodes())
    elapsed = t1 - t0
    lat_ms = {k: None if after["poll_latency"][k] is None
              else round(1000 * after["poll_latency"][k], 2)
              for k in ("p50_s", "p99_s", "max_s", "last_round_s")}
    rounds = after["poll_rounds"] - before["poll_rounds"]
    return {
        "agents": agents, "poll_interval_s": interval_s, "seconds": round(elapsed, 2),
        "online_after_s": round(online_after_s, 2),
        "online": after["online"], "offline": after["offline"],
        "rounds": rounds, "rounds_expected": int(elapsed / interval_s),
        "polls_answered": after["poll_latency"]["answered"] - before["poll_latency"]["answered"],
        "polls_failed": after["poll_latency"]["failed"] - before["poll_latency"]["failed"],
        "polls_failed_since_start": after["poll_latency"]["failed"],
        "latency_p50_ms": lat_ms["p50_s"], "latency_p99_ms": lat_ms["p99_s"],
        "latency_max_ms": lat_ms["max_s"], "last_round_ms": lat_ms["last_round_s"],
        "latency_window": after["poll_latency"]["window"],
        "master_cpu_percent_of_one_core": round(100 * (m1 - m0) / elapsed, 2),
        "master_rss_mb": round(rss / MB, 1), "master_rss_mb_peak": round(max(peak_rss, rss) / MB, 1),
        "agent_server_cpu_percent_of_one_core": round(100 * (a1 - a0) / elapsed, 2),
        "agent_server_rss_mb": round(agent_rss / MB, 1),
        "samples_stored": stored, "samples_stored_per_s": round(stored / (wall1 - wall0), 1),
        "master_exit_code_on_sigterm": master_code,
    }


# ---------------------------------------------------------------- inserting
def make_samples(count: int, nodes: int = INSERT_NODES) -> list[Sample]:
    """``count`` samples as poll rounds of ``nodes`` nodes, one second apart."""
    out = []
    for i in range(count):
        step, n = divmod(i, nodes)
        x = (i * 7919 % 1000) / 1000
        out.append(Sample(node=f"node{n + 1}.{DOMAIN}", time_s=T0 + step, cpu_util=x,
                          mem_used_mb=600.0 + 3000.0 * x, mem_total_mb=3792.0, load1=4.0 * x,
                          disk_used_ratio=0.31, temperature_c=42.0 + 25.0 * x,
                          cpu_per_core=(x, 1.0 - x, x / 2, 0.25 + x / 2)))
    return out


def insert_rate(samples: list[Sample], batch: int, folder: Path) -> dict[str, Any]:
    with open_store(str(folder / f"insert-{batch}.db")) as store:
        t = time.perf_counter()
        for i in range(0, len(samples), batch):
            store.add_samples(samples[i:i + batch])
            store.flush()
        elapsed = time.perf_counter() - t
    rate = len(samples) / elapsed
    return {"batch_size": batch, "samples": len(samples), "seconds": round(elapsed, 3),
            "samples_per_s": round(rate), "ratio_to_target": round(rate / TARGET_INSERT_PER_S, 2)}


def measure_inserts(count: int) -> list[dict[str, Any]]:
    samples = make_samples(count)
    with tempfile.TemporaryDirectory(prefix="rpiaas-insert-") as tmp:
        return [insert_rate(samples, batch, Path(tmp)) for batch in INSERT_BATCHES]


# ---------------------------------------------------------------- report
def missed_targets(r: dict[str, Any]) -> list[str]:
    p, missed = r["poll"], []
    slowest = min(row["samples_per_s"] for row in r["insert"])
    if slowest < TARGET_INSERT_PER_S:
        missed.append(f"insert {slowest:,} samples/s < {TARGET_INSERT_PER_S:,.0f}")
    failed = max(p["polls_failed"], p["polls_failed_since_start"])
    if failed or p["online"] != p["agents"]:
        missed.append(f"{failed} failed polls, {p['online']}/{p['agents']} online")
    if p["rounds"] < (1 - MAX_ROUND_SHORTFALL) * p["rounds_expected"]:
        missed.append(f"{p['rounds']} rounds < 90 % of {p['rounds_expected']}")
    return missed


def print_report(r: dict[str, Any]) -> None:
    p = r["poll"]
    print(f"rpiaas master polling {p['agents']} agents every {p['poll_interval_s']:g} s for "
          f"{p['seconds']} s; Python {r['python']}, SQLite {r['sqlite']}, {r['machine']}, "
          f"{r['cpus']} CPUs")
    print(f"  nodes           {p['online']} online, {p['offline']} offline "
          f"(all online {p['online_after_s']} s after start)")
    print(f"  rounds          {p['rounds']} of {p['rounds_expected']} expected; last round "
          f"{p['last_round_ms']} ms")
    print(f"  polls           {p['polls_answered']:,} answered, {p['polls_failed']} failed "
          f"({p['polls_failed_since_start']} since start)")
    print(f"  poll latency    p50 {p['latency_p50_ms']} ms, p99 {p['latency_p99_ms']} ms, "
          f"max {p['latency_max_ms']} ms (last {p['latency_window']:,} polls)")
    print(f"  master CPU      {p['master_cpu_percent_of_one_core']:.1f} % of one core; "
          f"RSS {p['master_rss_mb']} MB (peak {p['master_rss_mb_peak']} MB)")
    print(f"  agent server    {p['agent_server_cpu_percent_of_one_core']:.1f} % of one core; "
          f"RSS {p['agent_server_rss_mb']} MB ({p['agents']} ports, one process)")
    print(f"  history stored  {p['samples_stored']:,} samples, "
          f"{p['samples_stored_per_s']:,.0f} samples/s")
    print(f"SQLite insert, add_samples + flush per batch "
          f"(target {TARGET_INSERT_PER_S:,.0f} samples/s)")
    print(f"  {'batch':>7}  {'samples':>9}  {'seconds':>8}  {'samples/s':>10}  x target")
    for row in r["insert"]:
        print(f"  {row['batch_size']:>7,}  {row['samples']:>9,}  {row['seconds']:>8.2f}  "
              f"{row['samples_per_s']:>10,}  {row['ratio_to_target']:>8.2f}")
    print("targets: " + ("met" if not r["missed"] else "MISSED: " + "; ".join(r["missed"])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--agents", type=int, default=200, help="agents polled (default 200)")
    p.add_argument("--seconds", type=float, default=30.0, help="measuring time (default 30)")
    p.add_argument("--warmup", type=float, default=3.0,
                   help="seconds after all nodes are online before measuring (default 3)")
    p.add_argument("--insert-samples", type=int, default=200_000,
                   help="samples per insert run (default 200,000)")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 agents, 5 s, 20k samples")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the insert rate, a poll or the round count misses its target")
    p.add_argument("--serve-agents", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_agents is not None:  # the child: serve N agents until SIGTERM
        if args.port_file is None:
            p.error("--serve-agents needs --port-file")
        asyncio.run(_serve_agents(args.serve_agents, args.port_file))
        return 0
    if args.quick:
        args.agents, args.seconds, args.warmup, args.insert_samples = 20, 5.0, 1.0, 20_000
    if not 1 <= args.agents <= 254:  # node addresses are 127.0.1.1 .. 127.0.1.254
        p.error("--agents: expected 1 to 254")
    r: dict[str, Any] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                         "machine": platform.machine(), "cpus": os.cpu_count(),
                         "target_insert_samples_per_s": TARGET_INSERT_PER_S}
    r["poll"] = measure_polling(args.agents, args.seconds, args.warmup)
    r["insert"] = measure_inserts(args.insert_samples)
    r["missed"] = missed_targets(r)
    print_report(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 1 if args.check and r["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
