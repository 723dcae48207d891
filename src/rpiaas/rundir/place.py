"""Putting a run directory in place whole: written beside it, then moved into place.

A run directory is written into a hidden sibling (``.NAME.partial-PID``) and
moved into place only when it is complete (:class:`Partial`), so a failed or
interrupted run never leaves a half-written result.  An existing run
directory is replaced; any other existing non-empty path is refused before
anything is written.  The partial directories of processes that died
(SIGKILL, power loss) are cleared by the next run written beside them.

:class:`~rpiaas.rundir.writer.RunWriter` streams a run into a partial
directory; :class:`RunCopy` fills one with files that come whole from
elsewhere (``rpiaas run --live`` fetching a run from its master).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

from .format import RUN_FILES
from .reader import RunFileError, is_complete

__all__ = ["Partial", "RunCopy", "check_out", "remove_partials_of", "remove_stale_partials"]

_PARTIAL = re.compile(r"^\..+\.partial-([0-9]+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or a number no process has): keep its files
    return True


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the partial run directories (``.NAME.partial-PID``) of processes that are gone.

    A run killed with SIGKILL (or a machine that lost power) leaves its partial
    directory behind; the next run written beside it clears it away.  Returns
    what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL.match(entry.name)
        if m is None or not entry.is_dir(follow_symlinks=False) or _alive(int(m.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def remove_partials_of(parent: Path, names: Collection[str]) -> list[Path]:
    """Remove the partial directories of the runs ``parent/NAME``, NAME in ``names``,
    whoever left them.

    For runs known complete: a run redone elsewhere (another worker of a
    sweep) leaves the attempt that was killed mid-run behind, and its process
    may live on.
    """
    removed: list[Path] = []
    for p in parent.glob(".*.partial-*"):
        if p.name[1:].rsplit(".partial-", 1)[0] in names:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def check_out(out: Path) -> None:
    """Refuse (FileExistsError) an ``out`` that exists and is not a run directory."""
    if out.exists() and not is_complete(out) and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a run directory; not overwriting it")


class Partial:
    """The partial directory of run directory ``out``: :meth:`commit` moves it into place.

    Refuses an ``out`` that is not a run directory (:func:`check_out`) before
    anything is written.
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        check_out(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.out.parent)
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()

    def commit(self) -> Path:
        """Move the directory into place (replacing a run directory there); ``out``."""
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)
        return self.out

    def abort(self) -> None:
        """Remove the partial directory: nothing is left of the run."""
        shutil.rmtree(self.tmp, ignore_errors=True)


class RunCopy(Partial):
    """A run directory copied file by file (a live run fetched from its master), moved into
    place whole by :meth:`commit`."""

    @staticmethod
    def check(out: str | Path) -> None:
        """Refuse (FileExistsError) an ``out`` that is not a run directory: before the run
        that will be copied there starts."""
        check_out(Path(out))

    @staticmethod
    def files(names: Iterable[str]) -> list[str]:
        """Those of ``names`` that are run directory files (what a copy takes)."""
        return [name for name in names if name in RUN_FILES]

    def add(self, name: str, data: bytes) -> None:
        """File ``name`` of the run, with content ``data``."""
        if name not in RUN_FILES:
            raise ValueError(f"{name}: not a run directory file (one of {', '.join(RUN_FILES)})")
        (self.tmp / name).write_bytes(data)

    def commit(self) -> Path:
        """Move the copy into place; :class:`RunFileError` (nothing moved) without a
        ``run.json``."""
        if not is_complete(self.tmp):
            raise RunFileError(f"{self.out}: the copy has no run.json: not a complete run")
        return super().commit()
