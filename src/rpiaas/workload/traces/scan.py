"""One pass over a whole trace, as ``rpiaas traces FILE`` shows it: what it holds, what is skipped, how fast.

Every job is mapped onto one node big enough for any of them, so nothing is
left out for its size: what the report counts is what the trace itself holds
(cancelled jobs, bad lines when skipped) whatever the cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .jobs import SkipReport
from .mapping import map_jobs, target_for
from .options import TraceOptions, trace_format

__all__ = ["TraceScan", "scan_trace"]

_ANY_JOB = (10**9, 10**12)  # (cores, mem_mb) of a node no job is too big for


@dataclass(frozen=True)
class TraceScan:
    """What a pass over a trace read and kept (:class:`SkipReport`), and how long it took."""

    report: SkipReport
    read_s: float

    @property
    def jobs_per_s(self) -> float:
        """Job lines read a second (0 for a pass too short to time)."""
        return self.report.read / self.read_s if self.read_s > 0 else 0.0


def scan_trace(path: str | Path, skip_bad_lines: bool = False) -> TraceScan:
    """Read the trace at ``path`` (SWF, or CSV by its suffix) through, mapping every job.

    :raises ~rpiaas.inputs.source.InputError: a missing or unreadable file, or a bad line
        (``file:line: ...``) unless ``skip_bad_lines``, which counts it instead.
    """
    opts = TraceOptions(Path(path), trace_format(path), skip_bad_lines=skip_bad_lines)
    report = SkipReport()
    t0 = time.perf_counter()
    for _ in map_jobs(opts, target_for(opts, [_ANY_JOB], 1), report):
        pass
    return TraceScan(report, time.perf_counter() - t0)
