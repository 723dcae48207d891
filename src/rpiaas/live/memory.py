"""Giving the memory an ended run freed back to the system.

CPython frees a run's objects when the run ends, but the C allocator
(glibc's ``malloc``) keeps the pages it held in its heaps for later use: a
master that runs one live run after another grows by what each run left
free in the middle of a heap, as fragments no later allocation fits.
:func:`release_free_memory` asks glibc (``malloc_trim(0)``) to hand every free
page of every heap back; elsewhere (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    fn: Callable[[int], int] = trim
    return fn


def release_free_memory() -> bool:
    """Hand the free pages of the C allocator's heaps back to the system; whether it could
    (glibc: ``malloc_trim(0)``, a few milliseconds for a master's heaps)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
