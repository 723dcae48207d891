"""A small file system to fill: a tmpfs of a few kB mounted for a test (root only).

``tiny_fs(path)`` mounts it at ``path`` and unmounts it after; ``fill(path)``
fills it with one file until the disk takes no more (``ENOSPC``) and returns
that file, whose removal gives the space back.  ``why_no_tmpfs()`` says why
this machine cannot (not root, no ``mount``), for ``pytest.skip``: CI runs as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fill", "tiny_fs", "why_no_tmpfs"]


def why_no_tmpfs() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs to fill needs root (CI runs as root)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount and umount are not installed (util-linux)"
    return None


@contextmanager
def tiny_fs(path: Path, size: str = "2m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(path: Path, name: str = "filler") -> Path:
    """Fill the file system under ``path`` to the last byte; the file that holds it."""
    target = path / name
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        block = b"\0" * 4096
        while True:
            try:
                os.write(fd, block)
            except OSError:
                break
        while True:  # the last bytes, less than a block
            try:
                os.write(fd, b"\0")
            except OSError:
                break
    finally:
        os.close(fd)
    return target
