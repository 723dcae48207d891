"""An SWF trace read in blocks and mapped a column at a time gives what it gives line by line:
the same tasks, the same report, the same error on the same line.

Random traces with every irregularity the line-by-line reader handles (comments and blank
lines among the jobs, a short line, a bad or infinite field, a huge id, a preceding job, a
cancelled job, no run time, no processor count, more processors than MaxProcs, a job too
wide, memory recorded for some jobs only, an unsorted submit time, no requested time) under
random options, with blocks of a few lines so that plain and irregular blocks mix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.inputs.source import InputError
from rpiaas.workload.traces import swf as trace_swf
from rpiaas.workload.traces.jobs import SkipReport
from rpiaas.workload.traces.mapping import MappedBlock, Target, Trace, mapped_blocks, mapped_jobs
from rpiaas.workload.traces.options import TraceOptions

IRREGULAR = ["comment", "blank line", "short line", "bad text", "inf", "huge field", "huge id", "prev job",
             "cancelled", "no run time", "no procs", "requested procs", "over MaxProcs", "wide", "memory",
             "unsorted", "no requested time"]


def _trace(rng: np.random.Generator, path: Path, irregular: list[str], share: float = 0.08) -> dict[str, Any]:
    has_mem = bool(rng.random() < 0.5)
    lines = ["; Version: 2.2", "; MaxProcs: 8" if rng.random() < 0.7 else "; Computer: none", ";"]
    t = 0.0
    for i in range(int(rng.integers(1, 120))):
        t += float(rng.exponential(3.0))
        v: list[Any] = [1 + i, repr(t), int(rng.integers(0, 9)), repr(float(rng.exponential(50))),
                        int(rng.integers(1, 5)), -1, int(rng.integers(100, 900_000)) if has_mem else -1, -1,
                        repr(float(rng.exponential(200))), -1, 1, int(rng.integers(1, 4)), 1, -1, 1, 1, -1, -1]
        if irregular and rng.random() < share:
            kind = str(rng.choice(irregular))
            if kind == "comment":
                lines.append("; a note among the jobs")
            elif kind == "blank line":
                lines.append("")
            elif kind == "short line":
                lines.append(" ".join(map(str, v[:17])))
                continue
            elif kind in ("bad text", "inf"):
                v[int(rng.integers(18))] = {"bad text": "x1", "inf": "inf"}[kind]
            elif kind == "huge field":  # each finite, their sum not: a bad line
                v[2] = v[5] = "1e308"
            elif kind == "huge id":
                v[0] = "1e20"
            elif kind == "prev job":
                v[16], v[17] = max(1, i), repr(float(rng.exponential(5)))
            elif kind == "cancelled":
                v[10] = 5
            elif kind == "no run time":
                v[3] = -1
            elif kind == "no procs":
                v[4] = -1
            elif kind == "requested procs":
                v[4], v[7] = -1, int(rng.integers(1, 5))
            elif kind == "over MaxProcs":
                v[4] = 12
            elif kind == "wide":
                v[4] = 6
            elif kind == "memory":
                v[6] = -1 if has_mem else 5000
            elif kind == "unsorted":
                v[1] = repr(t / 2)
            elif kind == "no requested time":
                v[8] = 0
        lines.append("  ".join(map(str, v)))
    path.write_text("\n".join(lines) + "\n")
    return {"path": path, "format": "swf",
            "start_s": float(rng.choice([0.0, 30.0])) if rng.random() < 0.3 else None,
            "end_s": float(rng.uniform(50, 400)) if rng.random() < 0.3 else None,
            "max_jobs": int(rng.integers(1, 100)) if rng.random() < 0.2 else None,
            "load_scale": float(rng.choice([1.0, 2.5])), "skip_bad_lines": bool(rng.random() < 0.6),
            "skip_cancelled": bool(rng.random() < 0.8), "wide_jobs": str(rng.choice(["clip", "skip", "span"])),
            "mem_mb_per_core": float(rng.choice([256.0, 700.0])), "work_scale": float(rng.choice([1.0, 0.7])),
            "walltime": bool(rng.random() < 0.7)}


def _outcome(rows: Any, report: SkipReport) -> Any:
    try:
        jobs = []
        for item in rows():
            if type(item) is MappedBlock:
                for tid, a, c, m, w, wall in zip(item.ids.tolist(), item.arrival_s.tolist(), item.cores.tolist(),
                                                 item.mem_mb.tolist(), item.work_core_s.tolist(),
                                                 item.walltime_s.tolist(), strict=True):
                    jobs.append((tid, a, c, m, w, None if math.isnan(wall) else wall))
            else:
                jobs.append(item)
    except InputError as e:
        return "error", str(e)
    return jobs, dict(report.counts), report.first_line, report.read, report.kept


def _by_line(opts: TraceOptions, target: Target) -> Any:
    report = SkipReport()
    return _outcome(lambda: mapped_jobs(opts, target, report), report)


def _by_block(opts: TraceOptions, target: Target) -> Any:
    report = SkipReport()
    return _outcome(lambda: mapped_blocks(opts, target, report), report)


@pytest.mark.parametrize("seed", range(60))
def test_blocks_map_to_what_lines_map_to(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(trace_swf, "BLOCK", int(rng.choice([3, 8, 50])))
    irregular = IRREGULAR if seed % 3 else []  # a third all plain: whole blocks
    opts = TraceOptions(**_trace(rng, tmp_path / "t.swf", irregular))
    target = Target(int(rng.choice([4, 16])), 4096, float(rng.choice([1.0, 0.5, 2.0])), 0.0)
    assert _by_block(opts, target) == _by_line(opts, target)


@pytest.mark.parametrize("kind", IRREGULAR)
def test_each_irregularity_alone(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One kind of irregular line among plain ones, on nodes wide enough that nothing else
    leaves a job out: each of the block's checks is needed."""
    monkeypatch.setattr(trace_swf, "BLOCK", 4)
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        options = _trace(rng, tmp_path / "t.swf", [kind], share=0.2)
        options.update(start_s=None, end_s=None, max_jobs=None)
        opts = TraceOptions(**options)
        assert _by_block(opts, Target(16, 1 << 20, 1.0, 0.0)) == _by_line(opts, Target(16, 1 << 20, 1.0, 0.0))


@pytest.mark.parametrize("seed", range(12))
def test_a_bound_trace_keeps_the_tasks_a_run_streams(seed: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(100 + seed)
    monkeypatch.setattr(trace_swf, "BLOCK", 8)
    options = _trace(rng, tmp_path / "t.swf", ["comment", "cancelled", "wide", "no requested time", "prev job"])
    options.update(skip_bad_lines=True, start_s=None, end_s=None)
    trace = Trace(TraceOptions(**options)).bind([(4, 4096)], 16)
    assert trace.kept is not None
    kept = list(trace.kept.tasks("cpu", "", 4, trace.after))
    streamed = list(Trace(trace.options, trace.target, trace.count, after=trace.after).tasks(
        np.random.default_rng(0)))
    assert [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.walltime_s, t.nodes, t.parts, t.after)
            for t in kept] == \
        [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.walltime_s, t.nodes, t.parts, t.after)
         for t in streamed]
    assert trace.count == len(kept)


def test_a_plain_trace_is_read_in_blocks_after_its_header(tmp_path: Path) -> None:
    """The fast path is taken, not only allowed: the header's comments do not cost a block."""
    path = tmp_path / "t.swf"
    path.write_text("; Version: 2.2\n; MaxProcs: 4\n\n"
                    + "".join(f"{i} {i * 2} 0 {10 + i % 7} {1 + i % 4} -1 -1 -1 60 -1 1 1 1 -1 1 1 -1 -1\n"
                              for i in range(1, 20_001)))
    items = list(trace_swf.read_swf_blocks(path))
    assert all(type(b) is trace_swf.SwfBlock for b in items)
    assert sum(map(len, items)) == 20_000
    assert items[0].first_line == 4 and items[1].first_line == 4 + trace_swf.BLOCK
    assert [j.id for j in items[1].jobs()][:2] == [trace_swf.BLOCK + 1, trace_swf.BLOCK + 2]


def test_a_block_leaves_out_and_reports_what_lines_leave_out(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs left out (cancelled, without processors, over MaxProcs; one for two reasons) and one
    that spans nodes, after the left-out ones, in one block: mapped as a block, reported as
    line by line; and ``max_jobs`` reached by the block's last kept job, before a left-out one."""
    monkeypatch.setattr(trace_swf, "BLOCK", 64)
    odd = {5: {10: 5}, 7: {10: 5, 4: -1}, 9: {4: 12}, 20: {4: -1}, 40: {10: 5}, 12: {4: 6}}
    lines = ["; MaxProcs: 8"]
    for i in range(1, 41):
        v = [i, 10 * i, 0, 100, 2, -1, -1, -1, 300, -1, 1, 1, 1, -1, 1, 1, -1, -1]
        for k, x in odd.get(i, {}).items():
            v[k] = x
        lines.append(" ".join(map(str, v)))
    (tmp_path / "t.swf").write_text("\n".join(lines) + "\n")
    target = Target(4, 4096, 1.0, 0.0)
    opts = TraceOptions(tmp_path / "t.swf", wide_jobs="span")
    assert [type(item) for item in mapped_blocks(opts, target)] == [MappedBlock]
    by_line = _by_line(opts, target)
    assert by_line[1] == {"cancelled (status 5 or run time -1)": 3, "no processor count": 1,
                          "more processors than MaxProcs": 1, "spans nodes (wider than the largest node)": 1}
    assert by_line[2]["spans nodes (wider than the largest node)"] == 13 and by_line[3:] == (40, 35)
    assert _by_block(opts, target) == by_line
    kept = TraceOptions(tmp_path / "t.swf", wide_jobs="span", max_jobs=35)  # the last line is not read
    assert _by_line(kept, target)[3:] == (39, 35)
    assert _by_block(kept, target) == _by_line(kept, target)
