"""Workload traces: read recorded jobs and turn them into tasks.

Two formats, both streamed line by line (a trace of millions of jobs never
has to fit in memory):

- the Standard Workload Format (SWF) of the Parallel Workloads Archive: 18
  whitespace-separated fields per job, header comments (``; MaxProcs: 100``)
  first;
- CSV with a header row and a column mapping (arrival, cores, memory,
  duration or work).

:func:`read_swf` and :func:`read_csv` yield :class:`TraceJob` records; a
:class:`TraceOptions` (the ``workload: {trace: ...}`` scenario keys, see
``docs/traces.md``) says which jobs to keep and how their processors, memory
and run time become a :class:`~rpiaas.model.Task`'s ``cores``, ``mem_mb``
and ``work_core_s`` on the scenario's node types.  Everything left out is
counted by reason in a :class:`SkipReport`.

The modules: :mod:`~.jobs` (the job record and the skip report),
:mod:`~.swf`, :mod:`~.csv` (the readers), :mod:`~.options` (the scenario
keys), :mod:`~.mapping` (jobs to tasks, and the :class:`Trace` workload),
:mod:`~.scan` (one pass over a whole trace: what ``rpiaas traces FILE`` prints).
"""

from __future__ import annotations

from .csv import CSV_COLUMNS, read_csv
from .jobs import SkipReport, TraceJob
from .mapping import Target, Trace, first_submit, map_jobs, target_for
from .options import FILTER_KEYS, TRACE_KEYS, TraceOptions, parse_trace, trace_format
from .scan import TraceScan, scan_trace
from .swf import SWF_FIELDS, read_swf, swf_header

__all__ = ["CSV_COLUMNS", "FILTER_KEYS", "SWF_FIELDS", "TRACE_KEYS", "SkipReport", "Target", "Trace", "TraceJob",
           "TraceOptions", "TraceScan", "first_submit", "map_jobs", "parse_trace", "read_csv", "read_swf",
           "scan_trace", "swf_header", "target_for", "trace_format"]
