"""A small OCI image for container tasks, built on this machine from its static busybox (no
registry needed): ``tar`` of a root with ``/bin/busybox`` and its applets, ``podman import``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["APPLETS", "BUSYBOX", "BUSYBOX_IMAGE", "build_busybox_image", "is_static", "missing"]

BUSYBOX_IMAGE = "localhost/rpiaas/busybox:latest"  # the name scenarios/containers.yaml uses
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
APPLETS = ("sh", "sleep", "echo", "cat", "head", "tr", "yes", "dd", "true", "false", "timeout")


def is_static(path: str) -> bool:
    """Whether ``path`` is an ELF executable without a program interpreter (statically linked)."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only: the machines this runs on
                return False
            order = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from(order + "I", table, i * phentsize)[0] != 3  # PT_INTERP
               for i in range(phnum))


def missing() -> str | None:
    """What this machine lacks to build and run the image, or ``None``."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman and runc are not installed (apt-get install podman runc)"
    if not is_static(BUSYBOX):
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
