"""A small OCI image for container tasks, built on this machine from its static busybox (no
registry needed): ``tar`` of a root with ``/bin/busybox`` and its applets, ``podman import``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["APPLETS", "BUSYBOX", "BUSYBOX_IMAGE", "build_busybox_image", "missing"]

BUSYBOX_IMAGE = "localhost/rpiaas/busybox:latest"  # the name scenarios/containers.yaml uses
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
APPLETS = ("sh", "sleep", "echo", "cat", "head", "tr", "yes", "dd", "true", "false", "timeout")


def missing() -> str | None:
    """What this machine lacks to build and run the image, or ``None``."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman and runc are not installed (apt-get install podman runc)"
    file = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True, check=False).stdout
    if "statically linked" not in file:
        return f"{BUSYBOX} is not a static busybox (apt-get install busybox-static)"
    return None


_built: dict[tuple[str, str], float] = {}  # once per process: a test session shares it


def build_busybox_image(name: str = BUSYBOX_IMAGE, engine: str = "podman") -> float:
    """Build ``name`` once per process (again in a new one: the same content, the same image);
    the seconds the build took."""
    if (name, engine) in _built:
        return _built[name, engine]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        for d in ("bin", "tmp"):
            (Path(root) / d).mkdir()
        shutil.copy(BUSYBOX, Path(root) / "bin" / "busybox")
        for applet in APPLETS:
            os.symlink("busybox", Path(root) / "bin" / applet)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        done = subprocess.run([engine, "import", "--change", "ENV PATH=/bin", "-", name], stdin=tar.stdout,
                              capture_output=True, text=True, timeout=300, check=False)
        tar.wait()
    if done.returncode != 0:
        raise RuntimeError(f"{engine} import {name}: {done.stderr.strip()}")
    _built[name, engine] = time.monotonic() - t0
    return _built[name, engine]
