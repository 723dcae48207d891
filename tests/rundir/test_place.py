"""A run directory copied file by file: refused where something else is, moved into place whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.rundir import RunCopy, RunFileError, read_run


def test_a_copy_appears_whole_and_replaces_a_run(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "r"
    assert RunCopy.files(["run.json", "journal.jsonl", "tasks.csv"]) == ["run.json", "tasks.csv"]
    copy = RunCopy(out)
    copy.add("tasks.csv", b"task_id\n")
    with pytest.raises(ValueError, match="not a run directory file"):
        copy.add("../elsewhere", b"")
    assert not out.exists()
    with pytest.raises(RunFileError, match=r"no run\.json"):
        copy.commit()
    copy.add("run.json", b'{"summary": {"tasks": 1}}')
    assert copy.commit() == out and read_run(out)["summary"] == {"tasks": 1}
    again = RunCopy(out)  # a run directory is replaced
    again.add("run.json", b'{"summary": {"tasks": 2}}')
    again.commit()
    assert read_run(out)["summary"] == {"tasks": 2} and not (out / "tasks.csv").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]


def test_what_is_not_a_run_is_refused_and_an_abort_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a run directory"):
        RunCopy.check(tmp_path / "busy")
    with pytest.raises(FileExistsError, match="not a run directory"):
        RunCopy(tmp_path / "busy")
    copy = RunCopy(tmp_path / "r")
    copy.add("run.json", b"{}")
    copy.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]
