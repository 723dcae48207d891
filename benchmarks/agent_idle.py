"""What the node agent costs a Pi at rest: its memory, and its CPU share under a 1 s poll.

Usage::

    .venv/bin/python benchmarks/agent_idle.py                    # 30 s of polling /info once a second
    .venv/bin/python benchmarks/agent_idle.py --seconds 120 --path /metrics
    .venv/bin/python benchmarks/agent_idle.py --check            # exit 1 when over the targets
    .venv/bin/python benchmarks/agent_idle.py --json out.json
    .venv/bin/python benchmarks/agent_idle.py --agent-args "--vcgencmd /path/to/vcgencmd"

It starts the real ``rpiaas-agent`` (the script beside this Python, else
``python -m rpiaas_agent``) on a free loopback port with its default settings
(CPU sampled every second, ``vcgencmd`` polled every 5 s where it exists),
waits for ``/ping``, lets it settle for ``--warmup`` seconds, then polls
``--path`` once a second from this process for ``--seconds``, as the master
does.  Measured on the agent process alone (psutil):

- RSS at the end, and its peak over the run (sampled each second); USS (the
  memory that only the agent holds) where the OS reports it;
- CPU: user + system time the agent (and the ``vcgencmd`` processes it ran)
  used during the polling window, over the wall time of that window, in % of
  one core.  The clock ticks are 10 ms, so use long runs for small shares.

Targets (see docs/testbed.md): RSS <= 40 MB and <= 1 % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

TARGET_RSS_MB = 40.0
TARGET_CPU_PERCENT = 1.0
MB = 1024 * 1024


def agent_command() -> list[str]:
    script = shutil.which("rpiaas-agent", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "rpiaas_agent"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return bytes(r.read())


def wait_up(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> float:
    """Seconds until /ping answers."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise SystemExit(f"the agent exited with {proc.returncode}")
        try:
            get(base + "/ping")
            return time.monotonic() - t0
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the agent did not answer /ping within {timeout_s:g} s")


def measure(seconds: float, warmup_s: float, path: str, interval_s: float,
            agent_args: list[str]) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPIAAS_AGENT_")}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "agent.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*agent_command(), "--host", "127.0.0.1", "--port", str(port),
                                     *agent_args],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env)
        try:
            startup_s = wait_up(base, proc)
            agent = psutil.Process(proc.pid)
            rss_after_start = agent.memory_info().rss
            time.sleep(warmup_s)
            cpu0, t0 = agent.cpu_times(), time.monotonic()
            peak_rss, polls, errors, latency = 0, 0, 0, []
            next_poll = t0
            while time.monotonic() - t0 < seconds:
                q0 = time.perf_counter()
                try:
                    get(base + path)
                    polls += 1
                except OSError:
                    errors += 1
                latency.append(time.perf_counter() - q0)
                peak_rss = max(peak_rss, agent.memory_info().rss)
                next_poll += interval_s
                time.sleep(max(0.0, next_poll - time.monotonic()))
            cpu1, t1 = agent.cpu_times(), time.monotonic()
            mem = agent.memory_info()
            try:
                uss: int | None = agent.memory_full_info().uss
            except (psutil.AccessDenied, AttributeError):
                uss = None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        # children: the vcgencmd processes it runs on a Pi count against it too
        used_s = sum(getattr(cpu1, f) - getattr(cpu0, f)
                     for f in ("user", "system", "children_user", "children_system"))
        latency.sort()
        return {
            "path": path, "seconds": round(t1 - t0, 2), "polls": polls, "errors": errors,
            "startup_s": round(startup_s, 3),
            "rss_mb_after_start": round(rss_after_start / MB, 1),
            "rss_mb": round(mem.rss / MB, 1), "rss_mb_peak": round(max(peak_rss, mem.rss) / MB, 1),
            "uss_mb": None if uss is None else round(uss / MB, 1),
            "cpu_s": round(used_s, 3), "cpu_percent_of_one_core": round(100 * used_s / (t1 - t0), 3),
            "poll_ms_median": round(1000 * latency[len(latency) // 2], 2) if latency else None,
            "exit_code_on_sigterm": code,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "agent_args": agent_args,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=30.0, help="polling time (default 30)")
    p.add_argument("--warmup", type=float, default=3.0, help="settling time before measuring (default 3)")
    p.add_argument("--path", default="/info", help="what to poll (default /info)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    p.add_argument("--agent-args", default="", metavar="ARGS",
                   help="more arguments for rpiaas-agent, e.g. '--vcgencmd /path/to/fake'")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--check", action="store_true",
                   help=f"exit 1 when over {TARGET_RSS_MB:g} MB RSS or {TARGET_CPU_PERCENT:g} %% of a core")
    args = p.parse_args(argv)
    r = measure(args.seconds, args.warmup, args.path, args.interval, shlex.split(args.agent_args))
    over = []
    if r["rss_mb_peak"] > TARGET_RSS_MB:
        over.append(f"RSS {r['rss_mb_peak']} MB > {TARGET_RSS_MB:g} MB")
    if r["cpu_percent_of_one_core"] > TARGET_CPU_PERCENT:
        over.append(f"CPU {r['cpu_percent_of_one_core']} % > {TARGET_CPU_PERCENT:g} %")
    uss = "" if r["uss_mb"] is None else f" (USS {r['uss_mb']} MB)"
    print(f"rpiaas-agent idle, polling {r['path']} every {args.interval:g} s for {r['seconds']} s "
          f"({r['polls']} polls, {r['errors']} errors), Python {r['python']} on {r['machine']}")
    print(f"  RSS        {r['rss_mb']:6.1f} MB at the end, peak {r['rss_mb_peak']} MB{uss}; "
          f"{r['rss_mb_after_start']} MB right after start")
    print(f"  CPU        {r['cpu_percent_of_one_core']:6.3f} % of one core ({r['cpu_s']} s of CPU)")
    print(f"  poll       {r['poll_ms_median']} ms median round trip; up in {r['startup_s']} s; "
          f"exit code {r['exit_code_on_sigterm']} on SIGTERM")
    print("  targets    " + ("met" if not over else "MISSED: " + "; ".join(over)) +
          f" (<= {TARGET_RSS_MB:g} MB RSS, <= {TARGET_CPU_PERCENT:g} % of one core)")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
