"""Energy from power readings: the trapezoid rule over the readings' own times, gaps reported.

A meter gives watts at the times it read them, not at even steps.  Between
two readings the power is taken to move in a straight line from one to the
other (the trapezoid rule), so a power curve whose changes fall on reading
times is integrated exactly.  A window (a run's start and end) that falls
between two readings is cut there, at the power on that straight line: the
pieces of a trapezoid add up to the whole, so the energy of consecutive
windows adds up to that of their union.

An interval between two readings longer than ``max_gap_s`` is a **gap**: its
energy is not counted (no straight line is drawn over it), and it is
reported with its start and end, so the energy is known to cover less than
the window.  So is the part of the window before the first reading or after
the last one, when no reading lies beyond it within ``max_gap_s``.  When no
bound is given, it is three times the median interval between the readings:
a meter read every second may be a little late, not three seconds late.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GAP_FACTOR", "Gap", "MeteredEnergy", "integrate_energy"]

GAP_FACTOR = 3.0  # an interval this many times the median one between readings is a gap


@dataclass(frozen=True, slots=True)
class Gap:
    """A part of the window without readings close enough to integrate over (times as given)."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class MeteredEnergy:
    """The energy of a window from its readings.

    :param energy_j: the integral over the covered parts of the window.
    :param covered_s: how much of the window that is (the window's length less its gaps).
    :param gaps: the parts left out, in time order.
    :param readings: readings within the window.
    :param max_gap_s: the bound an interval was held to.
    """

    energy_j: float
    covered_s: float
    gaps: tuple[Gap, ...]
    readings: int
    max_gap_s: float

    @property
    def mean_power_w(self) -> float | None:
        """The mean power over the covered time, or None if nothing is covered."""
        return self.energy_j / self.covered_s if self.covered_s > 0 else None


def integrate_energy(times_s: Sequence[float], watts: Sequence[float], start_s: float,
                     end_s: float, max_gap_s: float | None = None) -> MeteredEnergy:
    """The energy in ``[start_s, end_s]`` of the readings ``watts`` at ``times_s`` (sorted).

    Readings outside the window count only to cut the interval that crosses its
    edge; pass the last one before the window and the first one after it.
    """
    if len(times_s) != len(watts):
        raise ValueError(f"{len(times_s)} times but {len(watts)} readings")
    if not end_s >= start_s:
        raise ValueError(f"the window ends ({end_s!r}) before it starts ({start_s!r})")
    if any(b < a for a, b in itertools.pairwise(times_s)):
        raise ValueError("the readings' times must be sorted")
    steps = [b - a for a, b in itertools.pairwise(times_s) if b > a]
    bound = max_gap_s if max_gap_s is not None else \
        (GAP_FACTOR * statistics.median(steps) if steps else 0.0)
    inside = sum(1 for t in times_s if start_s <= t <= end_s)
    energy = 0.0
    covered: list[tuple[float, float]] = []  # parts of the window integrated, in order
    for k in range(len(times_s) - 1):
        t0, t1 = times_s[k], times_s[k + 1]
        if t1 <= t0 or t1 <= start_s or t0 >= end_s or t1 - t0 > bound:
            continue
        w0, w1 = watts[k], watts[k + 1]
        a, b = max(t0, start_s), min(t1, end_s)
        slope = (w1 - w0) / (t1 - t0)
        wa, wb = w0 + slope * (a - t0), w0 + slope * (b - t0)
        energy += (wa + wb) / 2 * (b - a)
        if covered and covered[-1][1] >= a:
            covered[-1] = (covered[-1][0], b)
        else:
            covered.append((a, b))
    gaps: list[Gap] = []
    at = start_s
    for a, b in covered:
        if a > at:
            gaps.append(Gap(at, a))
        at = b
    if end_s > at:
        gaps.append(Gap(at, end_s))
    covered_s = sum(b - a for a, b in covered)
    return MeteredEnergy(energy, covered_s, tuple(gaps), inside, bound)
