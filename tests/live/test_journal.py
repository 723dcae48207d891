"""The journal: append, sync, read back (a line cut short by a crash is the end), and its event codec."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from rpiaas.core.events import (
    NodeBooted,
    NodeDown,
    NodeUp,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    TaskNotStarted,
    Tick,
)
from rpiaas.live.journal import Journal, event_from, event_json, read_head
from rpiaas.model import Task

from ..fulldisk import fill, tiny_fs, why_no_tmpfs


def test_records_are_read_back_in_order_and_a_cut_line_ends_them(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.write({"run": "r", "t0": 12.5})
    journal.write({"t": 1.0, "ev": [{"e": "tick"}]})
    journal.sync()
    assert Journal.read(path) == [{"run": "r", "t0": 12.5}, {"t": 1.0, "ev": [{"e": "tick"}]}]
    asyncio.run(_write_async(journal))
    journal.close()
    journal.write({"late": True})  # after close (a start answered after a cancel): dropped
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"t": 3.0, "ev": [')  # a crash in the middle of a line
    records = Journal.read(path)
    assert [r.get("t") for r in records] == [None, 1.0, 2.0]
    assert read_head(path) == {"run": "r", "t0": 12.5}
    assert Journal.read(tmp_path / "none.jsonl") == []


async def _write_async(journal: Journal) -> None:
    journal.write({"t": 2.0, "ev": []})
    await journal.sync_async()


def _task(task_id: int) -> Task:
    return Task(id=task_id, arrival_s=float(task_id), work_core_s=10.0, cores=1, mem_mb=100)


def test_every_event_goes_through_the_codec_unchanged() -> None:
    tasks = iter([_task(7)])
    events = [TaskArrived(_task(7)), TaskFinished(3), TaskFailed(4, "agent gone"),
              TaskNotStarted(5, "refused"), NodeDown(1, "offline"), NodeUp(1), NodeBooted(2),
              Tick()]
    records = [event_json(ev) for ev in events]
    assert records[0] == {"e": "arrive", "task": 7}  # a task by its id: the workload gives it again
    back = [event_from(r, tasks) for r in records]
    assert isinstance(back[0], TaskArrived) and back[0].task.id == 7
    assert back[1:] == events[1:]


def test_an_arrival_the_workload_does_not_give_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="journal: task 8 arrived, the workload gives 7"):
        event_from({"e": "arrive", "task": 8}, iter([_task(7)]))


def test_a_cut_line_is_dropped_before_a_record_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"run":"r","t0":1.0}\n{"t":2.0,"ev":[{"e"')  # a crash mid-record
    journal = Journal(path)
    journal.write({"t": 3.0, "ev": []})
    journal.sync()
    journal.close()
    assert Journal.read(path) == [{"run": "r", "t0": 1.0}, {"t": 3.0, "ev": []}]


def test_a_full_disk_keeps_every_record_until_it_has_room(tmp_path: Path) -> None:
    why = why_no_tmpfs()
    if why is not None:
        pytest.skip(why)
    with tiny_fs(tmp_path / "fs", "64k") as fs:
        path = fs / "journal.jsonl"
        journal = Journal(path)
        journal.write({"run": "r", "t0": 0.0})
        journal.sync()
        filler = fill(fs)
        records = [{"t": float(i), "ev": [{"e": "tick"}], "pad": "x" * 100} for i in range(50)]
        for rec in records:
            journal.write(rec)
        with pytest.raises(OSError) as err:
            journal.sync()
        assert err.value.errno == errno.ENOSPC
        assert journal.unwritten > 0
        filler.unlink()
        asyncio.run(journal.sync_async())
        assert journal.unwritten == 0
        journal.close()
        assert Journal.read(path) == [{"run": "r", "t0": 0.0}, *records]
