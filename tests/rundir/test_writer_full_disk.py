"""A run directory's tables on a full disk: a drain the disk refuses is kept whole and written
at the next drain that fits, so the files end as on a disk that never filled (root: a tmpfs)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from rpiaas.model import Task, TaskState
from rpiaas.rundir.writer import RunWriter

from ..fulldisk import fill, tiny_fs, why_no_tmpfs

DRAINS = 12


def _drain_of(w: RunWriter, k: int) -> None:
    """One drain's worth: node rows, a task's row (its end handed over as the control plane
    does, so it must not touch the disk) and event lines; every other drain is small (a live
    run's, less than the text layer's 8 kB chunk), the others about 250 kB."""
    rows = 2500 if k % 2 == 0 else 1
    pad = "x" * 50
    w.nodes.write("".join(f"{k}.{i},n0,on,1,10,0.25,3.0,0.0,1,0.125,measured,{pad}\n" for i in range(rows)))
    assert w.events is not None
    for i in range(rows):
        w.events.write(f'{{"t": {k}, "note": "drain {k} line {i} {pad}"}}\n')
    t = Task(k + 1, float(k), cores=1, mem_mb=10, work_core_s=1.0)
    t.state, t.start_s, t.end_s, t.node = TaskState.COMPLETED, float(k), float(k) + 1.0, 0
    w.task_ended(t)


def _writer(out: Path) -> RunWriter:
    w = RunWriter(out)
    w.node_names = ["n0"]
    return w


def test_a_refused_drain_is_written_whole_once_there_is_room(tmp_path: Path) -> None:
    why = why_no_tmpfs()
    if why is not None:
        pytest.skip(why)
    reference = _writer(tmp_path / "reference")
    for k in range(DRAINS):
        _drain_of(reference, k)
        reference.drain()
    expected = reference.commit({"summary": {}}, {})
    with tiny_fs(tmp_path / "fs", "4m") as fs:
        w = _writer(fs / "run")
        filler = fill(fs)
        refused = 0
        for k in range(DRAINS):
            _drain_of(w, k)
            try:
                w.drain()
            except OSError as e:
                assert e.errno == errno.ENOSPC
                refused += 1
        assert refused >= 2  # the 1 MB buffers overflowed onto a full disk
        filler.unlink()
        w.drain()
        got = w.commit({"summary": {}}, {})
        for name in ("tasks.csv", "nodes.csv", "events.jsonl"):
            assert (got / name).read_bytes() == (expected / name).read_bytes(), name
