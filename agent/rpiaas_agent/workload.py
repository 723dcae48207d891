"""The worker process of a task, and the reference compute kernel that sets the node's speed.

The agent starts one worker per task, in a process group of its own::

    python -I .../rpiaas_agent/workload.py KIND --parent-pid PID --cpu-ids 0,1 --start T [...]

(``python -m rpiaas_agent.workload KIND ...`` does the same by hand.)  The
agent runs this file rather than the module so that a worker imports the
standard library only: importing the package would load aiohttp, 0.25 s and
some 20 MB per task.  So this file must never import from the package.

Kinds:

- ``cpu``: ``work_core_s * REFERENCE_OPS_PER_S`` steps of :func:`kernel`, split
  evenly over one forked child per CPU id, each child pinned to its CPU.  The
  worker waits for them, so the rusage the agent gets from ``wait4`` counts them.
- ``memory``: allocate ``mem_mb`` MB, touch every page, hold them until
  ``duration_s`` after ``--start``.
- ``io``: write ``io_mb`` MB to ``--io-file`` and fsync, drop it from the page
  cache, read it back; again until ``duration_s`` after ``--start``; delete it.
- ``sleep``: sleep until ``duration_s`` after ``--start``.  ``--start`` is the
  agent's ``time.monotonic()`` when it started the worker, so the worker's own
  start-up is not added to the duration.
- ``command``: run ``argv`` (after ``--``) in the task's group, and exit with its status.
- ``calibrate``: print the kernel's single-core rate (steps per CPU second).

With ``--join PROCS`` (once per hierarchy) the worker first moves itself into
the task's cgroup (:mod:`rpiaas_agent.cgroups`), so that every process of the
task is born there; when the agent dies, the worker kills every process in
that cgroup and below, not only its group.  The agent moves it there too, as soon as it is started,
so the interpreter's own start-up memory is the task's as well.

Every worker dies with the agent.  On Linux it asks the kernel for SIGTERM when
its parent dies (``PR_SET_PDEATHSIG``), and then kills its whole process group
with SIGKILL: SIGKILL as the death signal would take the worker alone and leave
a command's own children running.  Elsewhere a thread checks the parent every
second.  Either way the worker first checks that its parent is still the agent:
the agent may have died before the death signal was set.

Exit status: 0 done; 1 failed (a message on stderr); 127 the command cannot be
run; 128 + N stopped by signal N; else the command's own.

Before it exits, a worker prints one line of JSON on its stdout (a pipe to the
agent): ``{"peak_rss_kib": N, "done_mono": T}``, the peak resident memory of
the largest of its processes and when its work ended (``time.monotonic()``, a
clock the agent shares): the task's end is then that moment, not the worker's
own exit and reaping after it, which took tens of milliseconds on a busy machine.  The agent cannot take it
from ``wait4``: Linux carries a
process's peak RSS over ``fork`` and ``execve``, so every worker would report at
least the agent's own (the kernel's ``signal->maxrss``), whereas the peak of
the worker's fresh address space (``VmHWM``) and that of the children it forks
are the task's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["CHUNK_OPS", "MB", "REFERENCE_OPS_PER_S", "calibrate", "kernel", "main"]

# The speed 1.0 of the simulator is a Raspberry Pi 4B core (Cortex-A72 at 1.5 GHz;
# see rpiaas/model.py), so this should be the kernel's rate there with CPython 3.11.
# It is an estimate (this x86-64 development machine's 10.3 M steps/s over the
# Pi 4B's usual 4x slower CPython) until measured on a Pi 4B: the Pi's /info
# ``speed.kernel_ops_per_s`` is the number to put here.
REFERENCE_OPS_PER_S = 2_500_000
CHUNK_OPS = 100_000  # steps between looks at the clock: ~10 ms here, ~40 ms on a Pi 4B
MB = 1 << 20  # mem_mb and io_mb count MiB
PAGE = 4096

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_FAILED, EXIT_CANNOT_RUN, EXIT_SIGNAL = 1, 127, 128


# ---------------------------------------------------------------- the reference kernel
def kernel(ops: int, x: int = 1) -> int:
    """``ops`` steps of the reference kernel: a 31-bit linear congruential generator.

    Pure Python integer arithmetic on small ints: no allocation beyond the
    interpreter's, no memory traffic, so its rate measures the core and the
    interpreter alone.  Returns the last value (so no step can be skipped).
    """
    for _ in range(ops):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate(seconds: float) -> float:
    """The kernel's single-core rate, in steps per CPU second: the median over ``seconds``.

    CPU time rather than wall time, so a busy node measures its core, not its
    load; the median of chunks, so a slow start (a CPU governor ramping up)
    does not count.
    """
    kernel(CHUNK_OPS)  # warm the interpreter's specialised code
    rates: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(rates) < 3:
        t0 = time.process_time()
        kernel(CHUNK_OPS)
        dt = time.process_time() - t0
        if dt > 0:
            rates.append(CHUNK_OPS / dt)
    rates.sort()
    return rates[len(rates) // 2]


def _burn(ops: int) -> None:
    x = 1
    while ops > 0:
        n = min(CHUNK_OPS, ops)
        x = kernel(n, x)
        ops -= n


# ---------------------------------------------------------------- dying with the agent
def _set_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _die_with(parent_pid: int, sig: int) -> None:
    """Die (with signal ``sig``) when ``parent_pid`` stops being this process's parent."""
    if not _set_death_signal(sig):
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os.kill(os.getpid(), sig)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # gone already, before the death signal was set
        os.kill(os.getpid(), sig)


def _pin(cpu_ids: Sequence[int]) -> None:
    if cpu_ids and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpu_ids)


def _kill_cgroup(procs_files: Sequence[str], rounds: int = 25) -> None:
    """SIGKILL every other process in the task's cgroup and below it (a command's daemon, a
    container's processes under its engine's cgroup there), again until none is left."""
    me = os.getpid()
    for _ in range(rounds):
        found = False
        for procs in procs_files:
            for top, _, _ in os.walk(os.path.dirname(procs)):
                try:
                    with open(os.path.join(top, "cgroup.procs"), encoding="ascii") as f:
                        pids = [int(word) for word in f.read().split()]
                except (OSError, ValueError):
                    continue
                for pid in pids:
                    if pid != me:
                        found = True
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
        if not found:
            return
        time.sleep(0.02)


def _sleep_until(deadline: float) -> None:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(left)


# ---------------------------------------------------------------- the kinds
def run_cpu(work_core_s: float, cpu_ids: Sequence[int]) -> int:
    total = round(work_core_s * REFERENCE_OPS_PER_S)
    n = max(1, len(cpu_ids))
    worker = os.getpid()
    children = []
    for i in range(n):
        share = total // n + (1 if i < total % n else 0)
        pid = os.fork()
        if pid == 0:  # a child: burn its share on its own CPU, never return
            code = EXIT_FAILED
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _set_death_signal(signal.SIGKILL)
                if os.getppid() == worker:
                    _pin(cpu_ids[i:i + 1])
                    _burn(share)
                    code = 0
            finally:
                os._exit(code)
        children.append(pid)
    status = 0
    for pid in children:
        if os.waitpid(pid, 0)[1] != 0:
            status = EXIT_FAILED
    return status


def run_memory(mem_mb: float, deadline: float) -> int:
    size = int(mem_mb * MB)
    block = bytearray(size)
    block[::PAGE] = b"\x01" * len(range(0, size, PAGE))  # every page resident, not just reserved
    _sleep_until(deadline)
    return 0 if len(block) == size else EXIT_FAILED


def run_io(io_mb: float, path: str, deadline: float) -> int:
    size = int(io_mb * MB)
    chunk = os.urandom(MB)  # random: a compressing file system must not shrink the writes
    try:
        while time.monotonic() < deadline:
            with open(path, "wb") as f:
                left = size
                while left > 0 and time.monotonic() < deadline:
                    left -= f.write(chunk[:min(MB, left)])
                f.flush()
                os.fsync(f.fileno())
                if hasattr(os, "posix_fadvise"):  # read from the disk, not the page cache
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            with open(path, "rb", buffering=0) as f:
                while time.monotonic() < deadline and f.read(MB):
                    pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return 0


def run_command(argv: Sequence[str], state: dict[str, Any]) -> int:
    import subprocess

    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError as e:
        print(f"rpiaas-agent worker: cannot run {argv[0]!r}: {e}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    state["command"] = proc
    code = proc.wait()
    return EXIT_SIGNAL - code if code < 0 else code


# ---------------------------------------------------------------- main
def peak_rss_kib() -> int:
    """The peak RSS of this process's address space, and of the children it waited for, in KiB."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # inflated on Linux, see above
    try:
        with open("/proc/self/status") as f:
            own = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, ValueError, IndexError, StopIteration):
        pass  # not Linux: keep getrusage's
    if sys.platform == "darwin":  # bytes there
        own, children = own // 1024, children // 1024
    return max(own, children)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rpiaas_agent.workload",
                                description="Run one rpiaas task (started by the agent).")
    p.add_argument("kind", choices=["cpu", "memory", "io", "sleep", "command", "calibrate"])
    p.add_argument("--parent-pid", type=int, default=None,
                   help="die when this process dies (default: the parent now)")
    p.add_argument("--cpu-ids", default="", help="CPUs to run on, e.g. 0,1 (default: any)")
    p.add_argument("--start", type=float, default=None,
                   help="time.monotonic() the duration counts from (default: now)")
    p.add_argument("--work-core-s", type=float, default=0.0)
    p.add_argument("--duration-s", type=float, default=0.0)
    p.add_argument("--mem-mb", type=float, default=0.0)
    p.add_argument("--io-mb", type=float, default=0.0)
    p.add_argument("--io-file", default="")
    p.add_argument("--seconds", type=float, default=0.3, help="calibration time")
    p.add_argument("--join", action="append", default=[], metavar="PROCS",
                   help="a cgroup.procs file to join before the work starts (repeatable)")
    p.epilog = "A command task's argv follows a lone --."
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[:len(argv) - len(command) - (1 if command else 0)])
    args.argv = command
    parent = os.getppid() if args.parent_pid is None else args.parent_pid
    state: dict[str, Any] = {"worker": os.getpid()}

    def on_term(signum: int, frame: object) -> None:
        if os.getppid() != parent:  # the death signal: the agent is gone, take the group along
            _kill_cgroup(args.join)  # and whatever left the group (a daemon, a container)
            if os.getpgid(0) == os.getpid():  # only a group of its own: never the agent's
                os.killpg(0, signal.SIGKILL)
            os._exit(EXIT_SIGNAL + signum)
        if "command" not in state:  # the agent's kill: the command got it too, and answers it
            raise SystemExit(EXIT_SIGNAL + signum)

    signal.signal(signal.SIGTERM, on_term)
    _die_with(parent, signal.SIGTERM)
    for procs in args.join:  # the task's cgroup, before any process of the task is forked
        try:
            with open(procs, "w", encoding="ascii") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            print(f"rpiaas-agent worker: cannot join the task's cgroup ({procs}): {e}", file=sys.stderr)
            return EXIT_FAILED
    cpu_ids = [int(c) for c in args.cpu_ids.split(",") if c.strip()]
    _pin(cpu_ids)
    deadline = (time.monotonic() if args.start is None else args.start) + args.duration_s
    if args.kind == "calibrate":
        print(repr(calibrate(args.seconds)), flush=True)
        return 0
    try:
        return _run(args, cpu_ids, deadline, state)
    finally:
        if os.getpid() == state["worker"]:  # not in a forked child on its way out
            done = time.monotonic()
            print(json.dumps({"peak_rss_kib": peak_rss_kib(), "done_mono": done}), flush=True)


def _run(args: argparse.Namespace, cpu_ids: list[int], deadline: float,
         state: dict[str, Any]) -> int:
    if args.kind == "cpu":
        return run_cpu(args.work_core_s, cpu_ids)
    if args.kind == "memory":
        return run_memory(args.mem_mb, deadline)
    if args.kind == "io":
        return run_io(args.io_mb, args.io_file, deadline)
    if args.kind == "sleep":
        _sleep_until(deadline)
        return 0
    if not args.argv:
        print("rpiaas-agent worker: command: no argv given", file=sys.stderr)
        return EXIT_FAILED
    return run_command(args.argv, state)


if __name__ == "__main__":
    sys.exit(main())
