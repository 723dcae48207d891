"""Reading CSV traces: a column mapping, empty cells, bad cells and missing columns located."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario
from rpiaas.workload.traces import (
    read_csv,
)
from rpiaas.workload.traces.csv import JobBlock, read_csv_blocks

from .tracefiles import scenario_file


# ---------------------------------------------------------------- CSV
def test_csv_with_a_column_mapping(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("submit,ncpu,mem,runtime,job\n0,2,512,30,7\n5,1,,10,8\n\n9,4,100,,9\n")
    sc = load_scenario(scenario_file(tmp_path, {"path": "t.csv", "skip_cancelled": True, "columns": {
        "arrival_s": "submit", "cores": "ncpu", "mem_mb": "mem", "duration_s": "runtime", "id": "job"}}))
    tasks = list(sc.workload.tasks(np.random.default_rng(0)))
    assert [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in tasks] == [
        (7, 0, 2, 512, 60), (8, 5, 1, 256, 10)]  # job 9 has no duration: skipped like a cancelled job
    assert sc.workload.report.counts == {"cancelled (status 5 or run time -1)": 1}  # type: ignore[attr-defined]
    q = tmp_path / "w.csv"
    q.write_text("arrival_s,cores,work_core_s\n0,2,100\n1,x,5\n")
    assert [j.work_core_s for j in read_csv(q, skip_bad_lines=True)] == [100]
    with pytest.raises(InputError, match=r"w.csv:3: cores: not a number: 'x'"):
        list(read_csv(q))
    with pytest.raises(InputError, match=r"w.csv:1: no column 'start' for arrival_s"):
        list(read_csv(q, {"arrival_s": "start"}))


@pytest.mark.parametrize("block", [True, False])
def test_an_id_beyond_2_53_is_a_bad_line(tmp_path: Path, block: bool) -> None:
    """A double holds every task id up to 2**53; a larger one would be read as another."""
    p = tmp_path / "ids.csv"
    p.write_text("id,arrival_s,cores,work_core_s\n1,0,1,5\n9007199254740993,1,1,5\n3,2,1,5\n")
    read = (lambda **kw: [j for b in read_csv_blocks(p, **kw)
                          for j in (b.jobs() if isinstance(b, JobBlock) else [b])]) \
        if block else (lambda **kw: list(read_csv(p, **kw)))
    with pytest.raises(InputError, match=r"ids.csv:3: id: '9007199254740993' is 2\*\*53 or more"):
        read()
    assert [j.id for j in read(skip_bad_lines=True)] == [1, 3]
