"""A CSV trace read in blocks and mapped a column at a time gives what it gives line by line:
the same tasks, the same report, the same error on the same line.

Random traces with every irregularity the line-by-line reader handles (blank
lines, blank, negative and bad cells, a quoted cell over two lines, CRLF, a
job to clip or to skip, an id beyond 64 bits, an unsorted arrival) under random
options, with blocks of a few lines so that plain and irregular blocks mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.workload.traces import csv as trace_csv
from rpiaas.workload.traces.mapping import Target
from rpiaas.workload.traces.options import TraceOptions

from .blockcheck import assert_kept_as_streamed, by_lines_and_by_blocks, random_options

IRREGULAR = ["blank line", "negative", "empty cell", "bad text", "inf", "short row", "wide",
             "no cores", "huge id", "unsorted", "quoted newline", "zero walltime", "nul byte", "lone carriage return"]


def _trace(rng: np.random.Generator, path: Path, irregular: list[str]) -> dict[str, Any]:
    has_id, has_mem, has_wall = (bool(rng.random() < 0.7) for _ in range(3))
    duration, work = [(True, False), (False, True), (True, True)][int(rng.integers(3))]
    head = ["id"] * has_id + ["arrival_s", "cores"] + ["mem_mb"] * has_mem + ["duration_s"] * duration \
        + ["work_core_s"] * work + ["walltime_s"] * has_wall + ["note"]
    newline = "\r\n" if rng.random() < 0.2 else "\n"
    lines = [",".join(head)]
    t = 0.0
    for i in range(int(rng.integers(1, 120))):
        t += float(rng.exponential(3.0))
        cell = {"id": str(1000 + i), "arrival_s": repr(t), "cores": str(int(rng.integers(1, 9))),
                "mem_mb": repr(float(rng.uniform(10, 5000))), "duration_s": repr(float(rng.exponential(50))),
                "work_core_s": repr(float(rng.exponential(80))), "walltime_s": repr(float(rng.exponential(200))),
                "note": "plain"}
        if irregular and rng.random() < 0.08:
            kind = str(rng.choice(irregular))
            numeric = [k for k in head if k != "note"]
            if kind == "blank line":
                lines.append("")
            elif kind in ("negative", "empty cell", "bad text", "inf"):
                cell[str(rng.choice(numeric))] = {"negative": "-1", "empty cell": "", "bad text": "x1",
                                                  "inf": "inf"}[kind]
            elif kind == "short row":
                lines.append(",".join(cell[k] for k in head[:-1]))
                continue
            elif kind == "wide":
                cell["cores"] = "64"
            elif kind == "no cores":
                cell["cores"] = "0"
            elif kind == "huge id" and has_id:
                cell["id"] = "1e20"
            elif kind == "unsorted":
                cell["arrival_s"] = repr(t / 2)
            elif kind == "nul byte":
                cell["note"] = "a\x00b"
            elif kind == "lone carriage return":
                cell["note"] = "a\rb"
            elif kind == "quoted newline":
                cell["note"] = '"two\nlines, quoted"'
            elif kind == "zero walltime":
                cell["walltime_s"] = "0"
        lines.append(",".join(cell[k] for k in head))
    path.write_text(newline.join(lines) + newline, newline="")
    return {"path": path, "format": "csv", **random_options(rng, 0.0, ["span", "clip", "skip"])}


@pytest.mark.parametrize("seed", range(60))
def test_blocks_map_to_what_lines_map_to(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(trace_csv, "BLOCK", int(rng.choice([3, 8, 50])))
    irregular = IRREGULAR if seed % 3 else []  # a third all plain: whole blocks
    opts = TraceOptions(**_trace(rng, tmp_path / "t.csv", irregular))
    target = Target(4, 4096, float(rng.choice([1.0, 0.5, 2.0])), 0.0)
    lines, blocks = by_lines_and_by_blocks(opts, target)
    assert blocks == lines


@pytest.mark.parametrize("seed", range(12))
def test_a_bound_trace_keeps_the_tasks_a_run_streams(seed: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(100 + seed)
    monkeypatch.setattr(trace_csv, "BLOCK", 8)
    options = _trace(rng, tmp_path / "t.csv", ["blank line", "negative", "wide", "zero walltime"])
    options.update(skip_bad_lines=True, start_s=None, end_s=None)
    assert_kept_as_streamed(options)


def test_a_block_is_read_whole(tmp_path: Path) -> None:
    """A plain trace comes as blocks only: the fast path is taken, not only allowed."""
    path = tmp_path / "t.csv"
    path.write_text("id,arrival_s,cores,mem_mb,work_core_s\n"
                    + "".join(f"{i},{i * 0.5!r},{1 + i % 4},{100 + i},{3.25 * i!r}\n" for i in range(20_000)))
    items = list(trace_csv.read_csv_blocks(path))
    assert all(type(b) is trace_csv.JobBlock for b in items)
    assert sum(map(len, items)) == 20_000 and items[1].first_line == trace_csv.BLOCK + 2
