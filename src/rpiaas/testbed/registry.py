"""The testbed's own image registry: Debian's ``docker-registry`` beside the master, and pushes to it.

Nodes cannot reach an outside registry, and a Pi's link is too slow to pull
from one anyway; the testbed keeps its images on the master.  The registry
(the CNCF distribution registry, ``/usr/bin/docker-registry``) runs as two
processes over one storage directory, ``DIR/registry/storage``:

- ``registry``: read-only, anonymous, plain HTTP, on the cluster network (on
  loopback for a local testbed).  The nodes pull from it; it refuses every
  write (405).
- ``registry-push``: writable, on loopback by default, and every request needs
  the push credential (HTTP basic auth against a bcrypt ``htpasswd`` file).
  ``rpiaas image push`` gives it from ``DIR/registry/push-auth.json`` (mode
  600), never on a command line or in a log.

So a node, or anyone on the cluster network, can read every image but change
none.  Neither listener has TLS: a push listener moved off loopback
(``push_listen``) sends its credential in clear text on that network.

:func:`start_registry` starts both and waits until they answer;
:func:`push_image` copies an image from this machine's container storage with
``skopeo``; :func:`repository` is the name an image gets there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .plan import HOST, TestbedError, free_ports
from .procs import Proc, proc_stat, start_process, stop_all, wait_until, write_json, write_private

__all__ = [
    "INFO_FILE",
    "PULL",
    "PUSH",
    "PUSH_USER",
    "REGISTRY_DIR",
    "PushResult",
    "Registry",
    "load_registry",
    "push_image",
    "registry_config",
    "registry_info",
    "repository",
    "start_registry",
]

REGISTRY_DIR = "registry"  # under the testbed's directory: storage, configs, htpasswd, push-auth.json
PULL, PUSH = "registry", "registry-push"  # the two processes' names (testbed status, logs)
PUSH_USER = "rpiaas-push"
REGISTRY_EXE = "docker-registry"
SKOPEO_EXE = "skopeo"
_CONNECT_TIMEOUT_S = 3.0
INFO_FILE = "registry.json"  # in REGISTRY_DIR: where the registry listens, for `rpiaas image push`
_INFO_KEYS = ("pull_address", "push_address", "auth_file", "storage")


@dataclass(frozen=True)
class Registry:
    """A running registry: its two processes, where each listens, and the push credential's file."""

    pull: Proc
    push: Proc
    pull_address: str  # HOST:PORT the nodes pull from
    push_address: str  # HOST:PORT pushes go to
    auth_file: str  # skopeo's auth file with the push credential (mode 600)
    storage: str
    popens: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False, compare=False)

    def processes(self) -> list[Proc]:
        return [self.pull, self.push]

    def to_json(self) -> dict[str, Any]:
        return {"pull_address": self.pull_address, "push_address": self.push_address,
                "auth_file": self.auth_file, "storage": self.storage}

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        """Stop both processes; a line each saying what happened."""
        lines = stop_all([self.push, self.pull], timeout_s)
        for p in self.popens:  # ours to reap, when started from this process
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        return lines


def load_registry(data: dict[str, Any], services: dict[str, Proc]) -> Registry | None:
    """The registry a testbed's ``testbed.json`` records (its ``registry`` and ``services``)."""
    if not data or PULL not in services or PUSH not in services:
        return None
    return Registry(services[PULL], services[PUSH], str(data["pull_address"]),
                    str(data["push_address"]), str(data["auth_file"]), str(data["storage"]))


def registry_config(storage: Path, listen: str, *, htpasswd: Path | None) -> dict[str, Any]:
    """The distribution registry's configuration: read-only without ``htpasswd``, else writable
    with every request authenticated against it."""
    maintenance: dict[str, Any] = {"uploadpurging": {"enabled": False}}
    if htpasswd is None:
        maintenance["readonly"] = {"enabled": True}
    doc: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": PUSH if htpasswd else PULL}},
        # no blob descriptor cache: the pull side sees a push at once, through the storage
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "maintenance": maintenance},
        "http": {"addr": listen, "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if htpasswd is not None:
        doc["auth"] = {"htpasswd": {"realm": "rpiaas-registry", "path": str(htpasswd)}}
    return doc


def _htpasswd_line(user: str, password: str) -> str:
    try:
        import bcrypt
    except ImportError:
        raise TestbedError(f"the registry's push credential needs bcrypt: {_EXTRA}") from None
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"


_EXTRA = "pip install 'rpiaas[live,registry]'"


def _auth_json(address: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {address: {"auth": auth}}})


def _status(address: str) -> int | None:
    """The HTTP status of ``GET /v2/`` at ``address``, None if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=_CONNECT_TIMEOUT_S) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


def _split(address: str, what: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise TestbedError(f"{what}: expected HOST:PORT, got {address!r}", exit_code=2)
    return host, int(port)


def start_registry(root: Path, *, listen: str = f"{HOST}:0", push_listen: str = f"{HOST}:0",
                   timeout_s: float = 15.0, env: dict[str, str] | None = None) -> Registry:
    """Start the registry of the testbed in ``root``: its pull and push processes, logs in
    ``root/logs``; wait until both answer.

    :param listen: HOST:PORT of the read-only, anonymous pull side (port 0: a free one).
    :param push_listen: HOST:PORT of the authenticated push side (port 0: a free one).
    :raises TestbedError: no ``docker-registry``, a bad address, a registry that runs in ``root``
        already, or a process that exits or does not answer in ``timeout_s`` (both are stopped
        again).
    """
    exe = shutil.which(REGISTRY_EXE)
    if exe is None:
        raise TestbedError(f"--registry needs {REGISTRY_EXE} (Debian: apt-get install docker-registry)")
    (pull_host, pull_port), (push_host, push_port) = _split(listen, "--listen"), _split(push_listen, "--push-listen")
    old = registry_info(root)
    if old is not None and _status(old["pull_address"]) == 200 and _status(old["push_address"]) == 401:
        # a new credential would lock out the pushes of the one that runs
        raise TestbedError(f"{root}: a registry runs there already (pulls on {old['pull_address']}, pushes on "
                           f"{old['push_address']}); stop it first", exit_code=2)
    free = free_ports((pull_port == 0) + (push_port == 0))
    pull_address = f"{pull_host}:{pull_port or free.pop()}"
    push_address = f"{push_host}:{push_port or free.pop()}"
    reg = root / REGISTRY_DIR
    (reg / "storage").mkdir(parents=True, exist_ok=True)
    reg.chmod(0o700)
    (root / "logs").mkdir(exist_ok=True)
    password = secrets.token_urlsafe(24)
    write_private(reg / "htpasswd", _htpasswd_line(PUSH_USER, password))
    write_private(reg / "push-auth.json", _auth_json(push_address, PUSH_USER, password))
    configs = {PULL: registry_config(reg / "storage", pull_address, htpasswd=None),
               PUSH: registry_config(reg / "storage", push_address, htpasswd=reg / "htpasswd")}
    procs: list[Proc] = []
    popens: list[subprocess.Popen[bytes]] = []
    try:
        for name, doc in configs.items():
            path = reg / f"{name}.yml"
            path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
            log = root / "logs" / f"{name}.log"
            popen = start_process([exe, "serve", str(path)], log, root, env=env)
            popens.append(popen)
            stat = proc_stat(popen.pid)
            port = int((pull_address if name == PULL else push_address).rpartition(":")[2])
            procs.append(Proc(name, popen.pid, port, str(log), stat[1] if stat else None))
        deadline = time.monotonic() + timeout_s
        for proc, address, expect in ((procs[0], pull_address, 200), (procs[1], push_address, 401)):
            wait_until(lambda a=address, e=expect: _status(a) == e, proc,
                       f"an answer on {address}", max(0.1, deadline - time.monotonic()))
    except BaseException:
        with contextlib.suppress(TestbedError):
            stop_all([*procs[1:], *procs[:1]], 5.0)
        for p in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        raise
    registry = Registry(procs[0], procs[1], pull_address, push_address, str(reg / "push-auth.json"),
                        str(reg / "storage"), popens)
    write_json(reg / INFO_FILE, registry.to_json())
    return registry


def registry_info(root: Path) -> dict[str, str] | None:
    """Where the registry last started in the directory ``root`` listens (``pull_address``,
    ``push_address``, ``auth_file``, ``storage``), None if none ever did there."""
    try:
        data = json.loads((root / REGISTRY_DIR / INFO_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise TestbedError(f"{root / REGISTRY_DIR / INFO_FILE}: unreadable ({e})", exit_code=2) from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in _INFO_KEYS):
        raise TestbedError(f"{root / REGISTRY_DIR / INFO_FILE}: expected {', '.join(_INFO_KEYS)}",
                           exit_code=2)
    return {k: data[k] for k in _INFO_KEYS}


# ---------------------------------------------------------------- pushing
@dataclass(frozen=True)
class PushResult:
    """An image pushed: where it is now, what nodes call it, and how long the copy took."""

    source: str  # the local image, as given
    reference: str  # where it is: PUSH_ADDRESS/REPOSITORY
    image: str  # what a scenario's `image:` names (REPOSITORY, without the registry)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def repository(image: str) -> str:
    """The name ``image`` gets in the registry: without a registry host (a first component with a
    dot or a colon, or ``localhost``), with a tag (``latest`` if it has none, unless a digest)."""
    if not image or any(c.isspace() for c in image) or image != image.strip("/"):
        raise TestbedError(f"image: expected name[:tag], got {image!r}", exit_code=2)
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        image = rest
    last = image.rpartition("/")[2]
    name = image[:len(image) - len(last)] + last.partition("@")[0].partition(":")[0]
    if name != name.lower():
        raise TestbedError(f"image: {image!r}: a registry's repository names are lower case", exit_code=2)
    if "@" not in last and ":" not in last:
        image += ":latest"
    return image


def _local_image(image: str) -> bool:
    """Whether this machine's container storage has ``image`` (by podman, skopeo's store)."""
    podman = shutil.which("podman")
    if podman is None:
        return True  # skopeo says so itself, less clearly
    return subprocess.run([podman, "image", "exists", image], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0


def push_image(image: str, push_address: str, auth_file: str | os.PathLike[str], *,
               timeout_s: float = 600.0) -> PushResult:
    """Copy ``image`` from this machine's container storage (podman's, buildah's) to the registry
    at ``push_address`` with ``skopeo copy``, authenticated by ``auth_file``.

    :raises TestbedError: one line: skopeo missing, no such local image, registry not answering,
        credential refused, or skopeo's own last line (never the credential).
    """
    skopeo = shutil.which(SKOPEO_EXE)
    if skopeo is None:
        raise TestbedError(f"rpiaas image push needs {SKOPEO_EXE} (Debian: apt-get install skopeo)")
    repo = repository(image)
    status = _status(push_address)
    if status is None:
        raise TestbedError(f"registry {push_address}: not answering (is the testbed up with "
                           "--registry? `rpiaas testbed status`)")
    if not os.access(auth_file, os.R_OK):
        raise TestbedError(f"{auth_file}: cannot read the registry's push credential", exit_code=2)
    if not _local_image(image):
        raise TestbedError(f"image {image}: no such image in this machine's container storage "
                           "(`podman images` lists them)", exit_code=2)
    dest = f"{push_address}/{repo}"
    argv = [skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile", str(auth_file),
            f"containers-storage:{image}", f"docker://{dest}"]
    t0 = time.monotonic()
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise TestbedError(f"image push {image}: not done after {timeout_s:g} s") from None
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1] if lines else f"skopeo exited with {done.returncode}"
        why = why.split('msg="', 1)[-1].rstrip('"')
        if "unauthorized" in why or "authentication required" in why:
            why = f"the registry refused the push credential in {auth_file}"
        raise TestbedError(f"image push {image} to {dest}: {why}")
    return PushResult(image, dest, repo, round(seconds, 3))
