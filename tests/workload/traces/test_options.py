"""The workload.trace keys: bad values located by file, line and key; skip_bad_lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario

from .tracefiles import scenario_file, swf_line, write_swf

BAD_TRACE_KEYS = [
    ({"path": "missing.swf"}, "workload.trace.path", "no such trace file"),
    ({"wide_jobs": "split"}, "workload.trace.wide_jobs", "expected one of"),
    ({"load_scale": 0}, "workload.trace.load_scale", "positive"),
    ({"start_s": 10, "end_s": 5}, "workload.trace.end_s", "the window ends before it starts"),
    ({"start_time": "yesterday"}, "workload.trace.start_time", "ISO 8601"),
    ({"columns": {"cores": "procs"}}, "workload.trace.columns", "only CSV traces"),
    ({"filters": {"user": [1]}}, "workload.trace.filters.user", "unknown key"),
    ({"cores_per_proc": "auto", "path": "plain.swf"}, "workload.trace.cores_per_proc",
     "auto needs an SWF header with MaxProcs or MaxNodes (plain.swf has none)"),
]


@pytest.mark.parametrize("extra, key, message", BAD_TRACE_KEYS)
def test_bad_trace_keys_are_located(tmp_path: Path, extra: dict[str, Any], key: str, message: str) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0)])
    write_swf(tmp_path / "plain.swf", [swf_line(1, 0)], header="")
    with pytest.raises(InputError) as e:
        load_scenario(scenario_file(tmp_path, {"path": str(p), **extra}))
    assert e.value.path == key and message in e.value.message and e.value.line is not None


def test_the_cli_reports_a_bad_line_in_one_line_and_skip_bad_lines_goes_on(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops", swf_line(3, 20)])
    s = scenario_file(tmp_path, {"path": "t.swf"})
    r = subprocess.run([sys.executable, "-m", "rpiaas", "validate", str(s)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == f"error: {p}:8: expected 18 SWF fields, got 2 " \
                                             "(skip_bad_lines: true in the trace, or --skip-bad-lines, to go on)\n"
    r = subprocess.run([sys.executable, "-m", "rpiaas", "validate", str(s),
                        "--set", "workload.trace.skip_bad_lines=true"], capture_output=True, text=True)
    assert r.returncode == 0 and "2 tasks" in r.stdout, r.stderr
