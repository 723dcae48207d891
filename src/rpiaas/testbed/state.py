"""What a testbed's directory records: ``testbed.json``, and whether a testbed there still runs.

A testbed outlives the command that started it; ``testbed.json`` in its
directory is how ``rpiaas testbed status`` and ``down`` find it again (and
:func:`~.local.load_testbed` makes a :class:`~.local.LocalTestbed` or a
:class:`~.virtual.VirtualTestbed` of it).  Every kind records its master
(``master``, ``master_url``) and its other processes by name under
``agents``, ``vms`` or ``services``; a virtual testbed also records its
``kind``, a local one none.  Before a testbed starts in a directory,
:func:`check_not_running` refuses one whose recorded testbed still runs.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, TypeVar

from ..power.drivers.process import running_pid
from .plan import TestbedError, TestbedRunning
from .procs import Proc, write_json

__all__ = ["STATE_FILE", "TOKENS_DIR", "VIRTUAL", "TestbedFiles", "check_not_running", "forget_state",
           "keep_out_of_git", "read_state", "unreadable", "write_state"]

STATE_FILE = "testbed.json"
TOKENS_DIR = "tokens"  # NODE.token, each node's own (mode 700)
VIRTUAL = "virtual"  # testbed.json's "kind" of a virtual testbed
_PROCESSES = ("agents", "vms", "services")  # the maps of processes by name, besides the master
_T = TypeVar("_T", bound="TestbedFiles")


class TestbedFiles:
    """What every kind of testbed keeps in its directory, the same way: the master's token
    (``master-token``) and the nodes' secret (``node-secret``); and a testbed is a context
    manager that stops it."""

    __test__ = False
    dir: Path

    @property
    def master_token_file(self) -> Path:
        return self.dir / "master-token"

    @property
    def node_secret_file(self) -> Path:
        return self.dir / "node-secret"

    @property
    def master_token(self) -> str:
        return self.master_token_file.read_text(encoding="utf-8").strip()

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def keep_out_of_git(root: Path) -> None:
    """A ``.gitignore`` of ``*`` in the testbed's directory: wherever it lives, ``git add -A``
    never takes its tokens, secrets and logs."""
    (root / ".gitignore").write_text("# a testbed's tokens, secrets and logs: never committed\n*\n",
                                     encoding="utf-8")


def read_state(root: Path) -> dict[str, Any] | None:
    """``root/testbed.json``, None if there is none; TestbedError (2) if it cannot be read."""
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise unreadable(root, e) from None
    if not isinstance(data, dict):
        raise unreadable(root, TypeError(f"expected an object, got {type(data).__name__}"))
    return data


def unreadable(root: Path, e: Exception) -> TestbedError:
    """The error for a ``testbed.json`` that does not say what it should."""
    return TestbedError(f"{root / STATE_FILE}: unreadable ({e}); remove it if nothing runs",
                        exit_code=2)


def write_state(root: Path, data: dict[str, Any]) -> None:
    """Record a testbed (its ``to_json()``) in ``root/testbed.json``, whole or not at all."""
    write_json(root / STATE_FILE, data)


def forget_state(root: Path) -> None:
    """Remove ``root/testbed.json``, if there is one."""
    with contextlib.suppress(FileNotFoundError):
        (root / STATE_FILE).unlink()


def check_not_running(root: Path) -> None:
    """Refuse a directory with a running testbed; forget one whose processes are all gone."""
    data = read_state(root)
    if data is None:
        return
    try:
        procs = [Proc(**data["master"])] + [Proc(**p) for key in _PROCESSES
                                            for p in data.get(key, {}).values()]
    except (KeyError, TypeError, AttributeError) as e:
        raise unreadable(root, e) from None
    running = [p for p in procs if p.alive()]
    if running:
        raise TestbedRunning(f"{root} has a running testbed ({len(running)} processes, master "
                             f"{data.get('master_url')}); stop it with `rpiaas testbed down "
                             f"--dir {root}`")
    forget_state(root)


def running_now(started: dict[str, Proc], power_dir: Path) -> dict[str, Proc]:
    """Each node's process now (an agent, a VM): the one its power driver's pid file in
    ``power_dir`` names, if it runs (the master switched the node off and on again), else
    the one the testbed ``started``."""
    out = {}
    for name, p in started.items():
        now = running_pid(power_dir, name)
        out[name] = p if now is None or now[0] == p.pid else \
            Proc(name, now[0], p.port, p.log, now[1], p.cpu_set)
    return out
