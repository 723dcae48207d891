"""What every trace reader yields: one recorded job, and the report of what a pass left out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ...inputs.source import InputError

__all__ = ["GO_ON", "Block", "SkipReport", "TraceJob", "is_number", "open_trace"]


class TraceJob(NamedTuple):
    """One job as a trace records it (``-1``/``None``: not recorded).

    A named tuple: a reader makes one per line, and ``tuple.__new__(TraceJob,
    values)`` makes it without a Python call.
    """

    id: int
    submit_s: float  # seconds since the trace's start (SWF: since UnixStartTime)
    run_s: float | None  # wall-clock run time on the traced machine
    procs: int  # processors (SWF: allocated, else requested); CSV: cores
    mem_mb: float | None  # memory of the whole job
    req_time_s: float | None  # the user's estimate (walltime)
    status: int = -1
    user: int = -1
    queue: int = -1
    partition: int = -1
    line: int = 0
    work_core_s: float | None = None  # CSV traces may give work instead of duration
    after: tuple[int, ...] = ()  # the jobs it waits for (SWF: the preceding job; CSV: an after column)
    think_s: float | None = None  # SWF: seconds from the preceding job's end to its submit


# what a malformed line's error says to do: a scenario's trace key, or the flag of the
# commands that read a trace on their own (rpiaas traces, rpiaas sweep)
GO_ON = "(skip_bad_lines: true in the trace, or --skip-bad-lines, to go on)"


@dataclass(frozen=True)
class Block:
    """A run of plain lines of a trace as columns, for a counting pass to map a column at
    a time: the fields ``id``, ``arrival_s``, ``cores``, ``mem_mb``, ``duration_s``,
    ``work_core_s`` and ``walltime_s`` as float64 values (``None`` for a field the trace
    does not give; NaN where a line does not), and a reader's own (SWF: ``status``).
    ``first_line`` is the first one's line; the others follow, one a line.  Its reader
    makes the block's jobs one by one again (:meth:`jobs`) for a pass that needs them."""

    first_line: int
    fields: dict[str, Any]

    def __len__(self) -> int:
        return len(self.fields["arrival_s"])

    def jobs(self) -> Iterator[TraceJob]:
        """The block's jobs, as its reader makes them line by line."""
        raise NotImplementedError


@dataclass
class SkipReport:
    """What a pass over a trace left out or changed, by reason, with the first line of each."""

    counts: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)
    read: int = 0  # job lines read
    kept: int = 0  # tasks produced

    def add(self, reason: str, line: int, n: int = 1) -> None:
        """Count ``n`` jobs for ``reason``, the first of them at ``line``."""
        self.counts[reason] += n
        self.first_line.setdefault(reason, line)

    def describe(self) -> str:
        """``1,200 jobs read, 1,150 kept; skipped: 40 cancelled (first at line 31), ...``."""
        parts = [f"{n:,} {reason} (first at line {self.first_line[reason]})"
                 for reason, n in sorted(self.counts.items())]
        return (f"{self.read:,} jobs read, {self.kept:,} kept"
                + ("; " + ", ".join(parts) if parts else ""))


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a float (a header value, an SWF field)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def open_trace(path: str | Path) -> Any:
    """The trace file opened for reading as text; a missing or unreadable file is an InputError."""
    try:
        return open(path, encoding="utf-8", errors="replace", newline="")
    except FileNotFoundError:
        raise InputError("no such trace file", str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read trace: {e.strerror or e}", str(path)) from None
