"""What the parts of a live run's parallel jobs measured, until each job's end is an event.

A parallel job runs as one agent task per part (:mod:`.agent_tasks`).  Its parts start
together and end together as far as the testbed allows: the job started when its last
part started (the latest of the starts the agents measured), and it ends when its last
part ends (one ``TaskFinished`` for the job, at the latest measured end); the first part
that fails fails the job (one ``TaskFailed``, its reason naming the part), and the run
stops the other parts.  The spread of a job's parts' starts (latest minus earliest) is how
far apart the testbed started them: ``run.json``'s ``live.part_start_spread_s``.
A job's measured CPU seconds are its parts' sum, its peak memory their largest.
"""

from __future__ import annotations

from typing import Any

from .result import lag_figures

__all__ = ["LiveJobs", "spread_figures"]

Use = tuple[float | None, float | None]


class LiveJobs:
    """The measured starts, ends and use of the parts of the jobs running now, by task id and
    rank (``nodes`` parts each), and the start spreads of the jobs that ended."""

    def __init__(self) -> None:
        self.starts: dict[int, dict[int, float]] = {}
        self.ends: dict[int, dict[int, float]] = {}
        self.use: dict[int, dict[int, Use]] = {}
        self.spreads: list[float] = []  # scenario seconds, one per job whose parts all started

    def attempt(self, task_id: int) -> None:
        """A new attempt of job ``task_id``: what its parts measured before is dropped."""
        self.starts.pop(task_id, None)
        self.ends.pop(task_id, None)
        self.use.pop(task_id, None)

    def started(self, task_id: int, rank: int, at_s: float) -> float:
        """Part ``rank`` started at ``at_s`` (kept if it is the first start of that part known);
        the job's start so far: its parts' latest."""
        starts = self.starts.setdefault(task_id, {})
        starts.setdefault(rank, at_s)
        return max(starts.values())

    def known(self, task_id: int, rank: int) -> bool:
        """Whether part ``rank``'s start is known."""
        return rank in self.starts.get(task_id, {})

    def ended(self, task_id: int, rank: int, at_s: float, parts: int) -> float | None:
        """Part ``rank`` completed at ``at_s``: the job's end (its parts' latest) once all
        ``parts`` have, else None."""
        ends = self.ends.setdefault(task_id, {})
        ends[rank] = at_s
        return max(ends.values()) if len(ends) == parts else None

    def used(self, task_id: int, rank: int, use: Use) -> Use:
        """Part ``rank``'s CPU seconds and peak memory; the job's so far (CPU summed over the
        parts, peak memory their largest)."""
        use_of = self.use.setdefault(task_id, {})
        use_of[rank] = use
        cpus = [c for c, _ in use_of.values() if c is not None]
        peaks = [p for _, p in use_of.values() if p is not None]
        return (sum(cpus) if cpus else None, max(peaks) if peaks else None)

    def close(self, task_id: int, parts: int, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """Job ``task_id`` reached its final state, started by the control plane at ``start_s``
        and ended at ``end_s``: each part's measured start and end, within that time (a node's
        clock may put a part's start a little before the decision), rank by rank; the job's
        start and end where a part's were not measured.  Its start spread is kept if all its
        parts started."""
        starts = self.starts.pop(task_id, {})
        ends = self.ends.pop(task_id, {})
        self.use.pop(task_id, None)
        if len(starts) == parts:
            self.spreads.append(max(starts.values()) - min(starts.values()))
        out = []
        for rank in range(parts):
            s = min(max(starts.get(rank, start_s), start_s), end_s)
            out.append((s, max(s, min(ends.get(rank, end_s), end_s))))
        return out


def spread_figures(spreads: list[float]) -> dict[str, Any]:
    """The spreads of the jobs' parts' starts (scenario seconds): how many jobs, and the
    median, 95th percentile and largest."""
    figures = lag_figures(spreads)
    return {"jobs": figures.pop("tasks"), **figures}
