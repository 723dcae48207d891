"""Giving freed memory back: what a process freed in the middle of its heap leaves its RSS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rpiaas.live.memory import release_free_memory

# 120 MB of 2 kB blocks (malloc's, not pymalloc's), all freed but one above them: glibc's free
# cannot shrink the heap past that one, so the pages stay in the process until a trim
_CHILD = textwrap.dedent("""
    import json, os, sys
    from rpiaas.live.memory import release_free_memory

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    base = rss_mb()
    blocks = [bytes(2000) for _ in range(60_000)]
    pin = bytes(2000)
    full = rss_mb()
    del blocks
    freed = rss_mb()
    trimmed = release_free_memory()
    print(json.dumps({"base": base, "full": full, "freed": freed, "after": rss_mb(), "trimmed": trimmed}))
""")


def _glibc() -> bool:
    import platform

    return sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not _glibc(), reason="malloc_trim is glibc's")
def test_memory_freed_inside_the_heap_goes_back_to_the_system_when_released() -> None:
    import json

    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True,
                         timeout=120)
    mb = json.loads(out.stdout)
    assert mb["trimmed"] is True
    assert mb["full"] - mb["base"] > 100, mb  # the blocks were really there
    assert mb["freed"] - mb["base"] > 80, mb  # freed, yet still the process's (else this tests nothing)
    assert mb["after"] - mb["base"] < 20, mb  # handed back


def test_release_says_whether_it_could() -> None:
    assert release_free_memory() is _glibc()
