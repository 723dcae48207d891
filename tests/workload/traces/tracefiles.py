"""Small trace files for the trace tests: SWF lines, an SWF file with a header, a scenario replaying a trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADER = """\
; Version: 2.2
; Computer: test machine
; UnixStartTime: 1000000000
; MaxNodes: 4
; MaxProcs: 16
;
"""


def swf_line(job: int, submit: float, run: float = 100, procs: int = 1, req_time: float = 200,
             status: int = 1, user: int = 1, mem_kb: float = -1, queue: int = 1) -> str:
    fields = [job, submit, 0, run, procs, -1, -1, procs, req_time, mem_kb, status, user, 1, -1,
              queue, 1, -1, -1]
    return " ".join(str(f) for f in fields)


def write_swf(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def scenario_file(tmp_path: Path, trace: dict[str, Any], nodes: int = 2, type_: str = "rpi4b") -> Path:
    import yaml

    data = {"name": "t", "cluster": {"clusters": [
                {"domain": "lab.test", "prefix": "10.0.1", "count": nodes, "type": type_}]},
            "workload": {"trace": trace}, "policy": "best_fit"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p
