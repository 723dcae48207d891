"""The job record's companions: the skip report, number checks, opening a trace file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.workload.traces.jobs import SkipReport, is_number, open_trace


def test_the_skip_report_counts_by_reason_with_the_first_line() -> None:
    rep = SkipReport()
    assert rep.describe() == "0 jobs read, 0 kept"
    rep.read, rep.kept = 1200, 1150
    for line in (31, 40, 44):
        rep.add("cancelled", line)
    rep.add("bad line", 7)
    assert rep.counts == {"cancelled": 3, "bad line": 1} and rep.first_line == {"cancelled": 31, "bad line": 7}
    assert rep.describe() == ("1,200 jobs read, 1,150 kept; "
                              "1 bad line (first at line 7), 3 cancelled (first at line 31)")


@pytest.mark.parametrize(("text", "expected"), [
    ("12", True), ("-1", True), ("1e3", True), ("nan", True), ("", False), ("x1", False), ("1,5", False)])
def test_is_number(text: str, expected: bool) -> None:
    assert is_number(text) is expected


def test_a_missing_or_unreadable_trace_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^.*nope.swf: no such trace file$"):
        open_trace(tmp_path / "nope.swf")
    with pytest.raises(InputError, match=r"^.*: cannot read trace: "):
        open_trace(tmp_path)  # a directory
    (tmp_path / "t.swf").write_bytes(b"; caf\xe9\n")
    with open_trace(tmp_path / "t.swf") as f:  # undecodable bytes do not stop a reader
        assert f.read() == "; caf\ufffd\n"
