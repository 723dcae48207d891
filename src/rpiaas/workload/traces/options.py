"""The ``workload: {trace: ...}`` scenario keys: which jobs to keep and how they map (``docs/traces.md``)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...inputs.source import KeyPath, Source
from ..base import IMAGELESS_KINDS
from .csv import AFTER_COLUMN, CSV_COLUMNS, read_csv
from .jobs import SkipReport, TraceJob, is_number
from .swf import read_swf, swf_header

__all__ = ["FILTER_KEYS", "TRACE_KEYS", "WIDE", "TraceOptions", "parse_trace", "trace_format"]

WIDE = ("span", "clip", "skip")
FILTER_KEYS = ("status", "users", "queues", "partitions", "min_run_s", "max_run_s",
               "min_procs", "max_procs")
TRACE_KEYS = ("path", "format", "columns", "start_s", "end_s", "start_time", "end_time",
              "max_jobs", "load_scale", "skip_cancelled", "skip_bad_lines", "cores_per_proc",
              "wide_jobs", "mem_mb_per_core", "work_scale", "walltime", "filters", "kind", "tenant")


@dataclass(frozen=True)
class TraceOptions:
    """The ``workload: {trace: ...}`` keys, validated (``docs/traces.md``)."""

    path: Path
    format: str = "swf"
    columns: dict[str, str] = field(default_factory=dict)
    start_s: float | None = None  # window, in the trace's own clock
    end_s: float | None = None
    max_jobs: int | None = None
    load_scale: float = 1.0  # > 1: arrivals closer together (more load)
    skip_cancelled: bool = True
    skip_bad_lines: bool = False
    cores_per_proc: float | None = 1.0  # None: "auto", cluster cores / MaxProcs
    wide_jobs: str = "span"
    mem_mb_per_core: float = 256.0
    work_scale: float = 1.0  # reference-core seconds per traced processor-second
    walltime: bool = True  # the requested time becomes walltime_s (the estimate)
    filters: dict[str, Any] = field(default_factory=dict)
    kind: str = "cpu"
    tenant: str = ""

    def jobs(self, report: SkipReport | None = None) -> Iterator[TraceJob]:
        if self.format == "swf":
            return read_swf(self.path, self.skip_bad_lines, report)
        return read_csv(self.path, self.columns, self.skip_bad_lines, report)


def trace_format(path: str | Path) -> str:
    """A trace's format by its file name: ``csv`` for ``*.csv``, else ``swf``."""
    return "csv" if Path(path).suffix.lower() == ".csv" else "swf"


def parse_trace(src: Source, path: KeyPath, data: Any) -> TraceOptions:
    """Validate the ``trace`` mapping of a workload."""
    m = src.mapping(path, data, TRACE_KEYS, required=("path",))
    file = src.input_file((*path, "path"), src.string((*path, "path"), m["path"]), "trace file")
    fmt = m.get("format") or trace_format(file)
    fmt = src.choice((*path, "format"), fmt, ("swf", "csv"))
    columns: dict[str, str] = {}
    if m.get("columns") is not None:
        if fmt != "csv":
            src.fail((*path, "columns"), "only CSV traces take a column mapping")
        cm = src.mapping((*path, "columns"), m["columns"], (*CSV_COLUMNS, AFTER_COLUMN))
        columns = {k: src.string((*path, "columns", k), v) for k, v in cm.items()}
    num = {}
    for key in ("start_s", "end_s"):
        if m.get(key) is not None:
            num[key] = src.number((*path, key), m[key], nonnegative=True)
    for key, target in (("start_time", "start_s"), ("end_time", "end_s")):
        if m.get(key) is None:
            continue
        if target in num:
            src.fail((*path, key), f"give {key} or {target}, not both")
        if fmt != "swf":
            src.fail((*path, key), f"{key} needs an SWF trace (its UnixStartTime header); use {target}")
        num[target] = _time_in_trace(src, (*path, key), m[key], file)
    if "start_s" in num and "end_s" in num and num["end_s"] <= num["start_s"]:
        src.fail((*path, "end_s" if "end_s" in m else "end_time"), "the window ends before it starts")
    cpp = m.get("cores_per_proc", 1.0)
    cores_per_proc = None if cpp == "auto" else src.number((*path, "cores_per_proc"), cpp, positive=True)
    if cores_per_proc is None:
        h = swf_header(file) if fmt == "swf" else {}
        if not any(is_number(h.get(k, "")) and float(h[k]) > 0 for k in ("MaxProcs", "MaxNodes")):
            src.fail((*path, "cores_per_proc"), f"auto needs an SWF header with MaxProcs or MaxNodes "
                                                f"({file.name} has none); give a number")
    filters: dict[str, Any] = {}
    if m.get("filters") is not None:
        fp = (*path, "filters")
        f = src.mapping(fp, m["filters"], FILTER_KEYS)
        for key, value in f.items():
            if key in ("status", "users", "queues", "partitions"):
                seq = value if isinstance(value, list) else [value]
                filters[key] = frozenset(src.integer((*fp, key), v) for v in seq)
            else:
                filters[key] = src.number((*fp, key), value, nonnegative=True)
    return TraceOptions(
        path=file, format=fmt, columns=columns, start_s=num.get("start_s"), end_s=num.get("end_s"),
        max_jobs=src.integer((*path, "max_jobs"), m["max_jobs"], minimum=1)
        if m.get("max_jobs") is not None else None,
        load_scale=src.number((*path, "load_scale"), m.get("load_scale", 1.0), positive=True),
        skip_cancelled=src.boolean((*path, "skip_cancelled"), m.get("skip_cancelled", True)),
        skip_bad_lines=src.boolean((*path, "skip_bad_lines"), m.get("skip_bad_lines", False)),
        cores_per_proc=cores_per_proc,
        wide_jobs=src.choice((*path, "wide_jobs"), m.get("wide_jobs", "span"), WIDE),
        mem_mb_per_core=src.number((*path, "mem_mb_per_core"), m.get("mem_mb_per_core", 256), positive=True),
        work_scale=src.number((*path, "work_scale"), m.get("work_scale", 1.0), positive=True),
        walltime=src.boolean((*path, "walltime"), m.get("walltime", True)),
        filters=filters,
        kind=src.choice((*path, "kind"), m.get("kind", "cpu"), IMAGELESS_KINDS),
        tenant=src.string((*path, "tenant"), m.get("tenant", "")),
    )


def _time_in_trace(src: Source, path: KeyPath, value: Any, file: Path) -> float:
    """An ISO 8601 date-time as seconds of the trace's clock (from its UnixStartTime)."""
    start = swf_header(file).get("UnixStartTime")
    if start is None or not is_number(start):
        src.fail(path, f"{file.name} has no UnixStartTime header; give the window in seconds")
    if isinstance(value, _dt.datetime):
        when = value
    else:
        try:
            when = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            src.fail(path, f"expected an ISO 8601 date-time such as 1996-10-01T00:00:00Z, got {value!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    offset = when.timestamp() - float(start)
    if offset < 0:
        first = _dt.datetime.fromtimestamp(float(start), _dt.timezone.utc)
        src.fail(path, f"before the trace starts ({first:%Y-%m-%d %H:%M:%S} UTC)")
    return offset
