"""A run held for lack of space: the journal on /dev/full (every write ENOSPC, no root needed)."""

from __future__ import annotations

import asyncio
import errno
import json
from pathlib import Path

import pytest

from rpiaas.live.hold import DiskHold, RunSuspended, is_no_space
from rpiaas.live.journal import Journal
from rpiaas.live.options import LiveOptions

FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
def test_a_journal_with_no_space_holds_then_suspends_past_the_limit() -> None:
    async def go() -> None:
        hold = DiskHold(limit_s=0.5)
        journal = Journal(FULL)
        journal.write({"t": 0.0, "ev": []})
        notes: list[str] = []
        wakes: list[int] = []
        assert await hold.sync(journal, 2.5, notes.append, lambda: wakes.append(1)) is False
        assert hold.active and hold.holds == 1
        assert hold.reason == "no space left for the run's files: No space left on device"
        assert [json.loads(n) for n in notes] == [{"t": 2.5, "hold": "begin", "reason": hold.reason}]
        await asyncio.sleep(1.2)
        assert len(wakes) >= 1  # the run is woken to try again, about once a second
        assert journal.unwritten > 0  # nothing is thrown away while held
        with pytest.raises(RunSuspended, match=r"over the limit of 0.5 s: no space left .* --resume"):
            await hold.sync(journal, 3.0, notes.append, lambda: None)
        assert len(notes) == 1  # one begin, however many tries
        hold.stop()

    asyncio.run(go())


def test_only_a_full_disk_holds() -> None:
    assert is_no_space(OSError(errno.ENOSPC, "No space left on device"))
    assert is_no_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_no_space(OSError(errno.EIO, "Input/output error"))
    assert not is_no_space(ValueError("no"))
    times = iter([10.0, 12.5, 13.0])
    hold = DiskHold(limit_s=2.0, clock=lambda: next(times))
    assert hold.begin(OSError(errno.ENOSPC, "No space left on device")) is True
    assert hold.over  # 2.5 s > 2 s
    assert hold.end() == 3.0 and not hold.active and hold.held_s == 3.0 and hold.reason == ""
    with pytest.raises(ValueError, match="hold_limit_s: expected a positive number"):
        DiskHold(limit_s=0)
    with pytest.raises(ValueError, match="hold_limit_s: expected a positive number"):
        LiveOptions(hold_limit_s=float("inf"))
