"""Serving a rendered netboot directory: dnsmasq in the foreground, and optionally nfs-ganesha.

``rpiaas netboot serve DIR`` runs the real daemons with the rendered configs,
their pid, lease and log files in a state directory, until it gets SIGTERM or
SIGINT (or one of them exits): then it stops the others and waits until
every one is gone, so a caller may delete their network at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .check import find_program
from .plan import NetbootError
from .render import load_manifest

__all__ = ["dnsmasq_command", "serve"]

_STOP_WAIT_S = 10.0


def _program(name: str) -> str:
    exe = find_program(name)
    if exe is None:
        raise NetbootError(f"{name} is not installed")
    return exe


def dnsmasq_command(directory: str | Path, state_dir: str | Path) -> list[str]:
    """dnsmasq in the foreground on ``directory``'s config, its files in ``state_dir``.

    ``--keep-in-foreground`` rather than ``--no-daemon``: only the former
    writes the pid file.
    """
    d, s = Path(directory).absolute(), Path(state_dir).absolute()
    return [_program("dnsmasq"), "--keep-in-foreground", f"--conf-file={d / 'dnsmasq.conf'}",
            f"--pid-file={s / 'dnsmasq.pid'}", f"--dhcp-leasefile={s / 'dnsmasq.leases'}",
            "--log-facility=-"]


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + _STOP_WAIT_S
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def serve(directory: str | Path, state_dir: str | Path, commands: Sequence[Sequence[str]] = ()
          ) -> int:
    """Run dnsmasq (and ``commands``, e.g. nfs-ganesha's) until stopped; the exit code.

    0 after SIGTERM or SIGINT; otherwise the exit code of the first daemon
    that stopped by itself.
    """
    directory = Path(directory)
    load_manifest(directory)  # refuse a directory that is not a render
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for cmd in (dnsmasq_command(directory, state), *commands):
            print(f"starting: {' '.join(cmd)}", file=sys.stderr, flush=True)
            procs.append((Path(cmd[0]).name, subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL)))
        while not stopping:
            ended = [(name, p) for name, p in procs if p.poll() is not None]
            if ended:
                name, p = ended[0]
                print(f"{name} exited with status {p.returncode}; stopping", file=sys.stderr,
                      flush=True)
                return p.returncode or 1
            time.sleep(0.1)
        return 0
    finally:
        _stop([p for _, p in procs])
        for s, handler in old.items():
            signal.signal(s, handler)
