"""A live run's clock: scenario seconds on the master's scaled wall clock.

Scenario second ``t`` is unix time ``t0 + t * timescale``: a timescale of 0.01
replays a scenario 100 times faster.  ``t0`` is set when the run begins (or,
resumed, from its journal's head).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RunClock"]


class RunClock:
    """Scenario time against unix time.

    :param timescale: wall seconds per scenario second.
    :param clock: the unix time now (``time.time``).
    """

    def __init__(self, timescale: float, clock: Callable[[], float] = time.time) -> None:
        self.timescale = timescale
        self.clock = clock
        self.t0 = 0.0

    def unix(self) -> float:
        """The unix time now."""
        return self.clock()

    def now(self) -> float:
        """Scenario seconds since the run began."""
        return (self.clock() - self.t0) / self.timescale

    def scenario_time(self, unix_s: float) -> float:
        """The scenario time of unix time ``unix_s``."""
        return (unix_s - self.t0) / self.timescale

    def wall(self, scenario_s: float) -> float:
        """The unix time of scenario time ``scenario_s``."""
        return self.t0 + scenario_s * self.timescale
