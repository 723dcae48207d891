"""An SWF trace read in blocks and mapped a column at a time gives what it gives line by line:
the same tasks, the same report, the same error on the same line.

Random SWF files with every irregularity the line-by-line reader handles (comment,
blank, short and bad lines, a non-finite or huge field, an id beyond 2**53, cancelled
jobs, a missing run time or processor count, more processors than MaxProcs, a
preceding job (kept or malformed), jobs wider than a node, memory given per processor or
requested, a run time of -0, an unsorted submit) under random options, with blocks of
a few lines so that plain and irregular blocks mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.workload.traces import swf as trace_swf
from rpiaas.workload.traces.mapping import Target
from rpiaas.workload.traces.options import TraceOptions

from .blockcheck import assert_kept_as_streamed, by_lines_and_by_blocks, random_options

IRREGULAR = ["comment", "blank line", "short row", "bad text", "inf", "huge field", "huge id", "cancelled",
             "no run time", "minus zero run", "requested procs", "no procs", "over MaxProcs", "after",
             "bad after", "wide", "memory", "requested memory", "unsorted", "zero walltime", "huge memory",
             "huge run"]


def _line(fields: list[Any]) -> str:
    return " ".join(str(f) for f in fields)


def _trace(rng: np.random.Generator, path: Path, irregular: list[str]) -> dict[str, Any]:
    lines = ["; Version: 2.2", "; MaxProcs: 16", ";"] if rng.random() < 0.8 else []
    t = 1000.0
    for i in range(int(rng.integers(1, 120))):
        t += float(rng.integers(0, 8))
        job = 10 + i
        procs = int(rng.integers(1, 5))
        f: list[Any] = [job, t, 0, float(rng.integers(0, 500)), procs, -1, -1, procs, float(rng.integers(1, 900)),
                        -1, 1, int(rng.integers(1, 4)), 1, -1, 1, 1, -1, -1]
        if irregular and rng.random() < 0.1:
            kind = str(rng.choice(irregular))
            if kind == "comment":
                lines.append("; a comment between jobs")
            elif kind == "blank line":
                lines.append("")
            elif kind == "short row":
                lines.append(_line(f[:-1]))
                continue
            elif kind == "bad text":
                f[int(rng.integers(18))] = "x1"
            elif kind == "inf":
                f[int(rng.integers(2, 18))] = "inf"
            elif kind == "huge field":
                f[5], f[12] = "1e308", "1e308"  # finite, but their sum is not
            elif kind == "huge id":
                f[0] = "1e20"
            elif kind == "cancelled":
                f[10] = 5
            elif kind == "no run time":
                f[3] = -1
            elif kind == "minus zero run":
                f[3] = "-0"
            elif kind == "requested procs":
                f[4] = -1
            elif kind == "no procs":
                f[4], f[7] = -1, -1
            elif kind == "over MaxProcs":
                f[4] = f[7] = 40
            elif kind == "after" and i:
                f[16], f[17] = job - 1, float(rng.integers(0, 30))
            elif kind == "bad after":
                f[16] = job
            elif kind == "wide":
                f[4] = f[7] = int(rng.integers(5, 16))
            elif kind == "memory":
                f[6] = float(rng.integers(1000, 3_000_000))
            elif kind == "requested memory":
                f[9] = float(rng.integers(1000, 3_000_000))
            elif kind == "unsorted":
                f[1] = t - 50
            elif kind == "zero walltime":
                f[8] = 0
            elif kind == "huge memory":  # finite, but not times the processors
                f[6] = "1.5e308"
            elif kind == "huge run":  # finite, but not times the cores
                f[3] = "1e308"
        lines.append(_line(f))
    path.write_text("\n".join(lines) + "\n")
    return {"path": path, "format": "swf", **random_options(rng, 1000.0, ["span", "clip", "skip"])}


@pytest.mark.parametrize("seed", range(80))
def test_blocks_map_to_what_lines_map_to(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(trace_swf, "BLOCK", int(rng.choice([3, 8, 50])))
    irregular = IRREGULAR if seed % 3 else []  # a third all plain: whole blocks
    opts = TraceOptions(**_trace(rng, tmp_path / "t.swf", irregular))
    target = Target(4, 4096, float(rng.choice([1.0, 0.5, 2.0])), 1000.0)
    lines, blocks = by_lines_and_by_blocks(opts, target)
    assert blocks == lines


@pytest.mark.parametrize("seed", range(12))
def test_a_bound_trace_keeps_the_tasks_a_run_streams(seed: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(100 + seed)
    monkeypatch.setattr(trace_swf, "BLOCK", 8)
    options = _trace(rng, tmp_path / "t.swf", ["cancelled", "no procs", "wide", "memory", "zero walltime"])
    options.update(skip_bad_lines=True, start_s=None, end_s=None, wide_jobs="span")
    assert_kept_as_streamed(options)


def test_plain_lines_come_as_blocks(tmp_path: Path) -> None:
    """A plain SWF file comes as blocks only, its header skipped: the fast path is taken, not only
    allowed; a block's jobs are the jobs read line by line."""
    path = tmp_path / "t.swf"
    path.write_text("; MaxProcs: 8\n" + "".join(
        f"{i} {i * 3} 0 {10 + i % 7} {1 + i % 8} -1 {i % 5 * 1000} {1 + i % 8} {50 + i} -1 1 2 3 -1 1 1 -1 -1\n"
        for i in range(1, 20_000)))
    items = list(trace_swf.read_swf_blocks(path))
    assert all(type(b) is trace_swf.SwfBlock for b in items)
    assert sum(map(len, items)) == 19_999 and items[0].first_line == 2 and items[1].first_line == trace_swf.BLOCK + 1
    assert [j for b in items for j in b.jobs()] == list(trace_swf.read_swf(path))


def test_a_pass_that_reaches_max_jobs_stops_where_lines_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit reached at a block's last kept job, a cancelled job after it: line by line the
    pass stops before reading it, and so does the block (neither read nor counted)."""
    monkeypatch.setattr(trace_swf, "BLOCK", 3)
    path = tmp_path / "t.swf"
    path.write_text("".join(_line([j, j, 0, 10, 1, -1, -1, 1, 20, -1, 5 if j == 3 else 1, 1, 1, -1, 1, 1, -1, -1])
                            + "\n" for j in (1, 2, 3, 4, 5, 6)))
    opts = TraceOptions(path=path, max_jobs=2)
    target = Target(4, 4096, 1.0, 0.0)
    lines, blocks = by_lines_and_by_blocks(opts, target)
    assert lines[1:] == ({}, {}, 2, 2)
    assert blocks == lines
