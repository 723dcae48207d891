"""Input limits: how large, how deep and how long an input may make rpiaas work.

Each limit guards against an input that would otherwise crash, hang or fill
the disk (a file of 50 MB, brackets nested 10,000 deep, a YAML alias bomb, a
run sampled every microsecond for a thousand years).  The defaults are far
above any real scenario; each is raised with an environment variable, and
every refusal names the limit and that variable.  ``docs/scenario.md`` lists
them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InputError

__all__ = ["LIMITS", "Limit"]

@dataclass(frozen=True)
class Limit:
    """One limit: its default, the variable that raises it, and the largest value allowed there."""

    name: str
    default: float
    variable: str
    unit: str = ""
    ceiling: float | None = None  # beyond this even the variable cannot go (Python's own stack)

    def value(self) -> float:
        """The limit in force: ``$variable`` if set (checked), else the default."""
        text = os.environ.get(self.variable)
        if text is None or not text.strip():
            return self.default
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0 or (self.ceiling is not None and value > self.ceiling):
            top = f" up to {self.ceiling:,g}" if self.ceiling is not None else ""
            raise InputError(f"expected a positive number{top}, got {text!r}", self.variable)
        return value

    def hint(self) -> str:
        """``limit 10 MB; set RPIAAS_MAX_INPUT_MB to raise it``."""
        v = self.value()
        shown = f"{v:,.0f}" if float(v).is_integer() else f"{v:g}"
        return f"limit {shown}{' ' + self.unit if self.unit else ''}; set {self.variable} to raise it"


INPUT_MB = Limit("input file size", 10, "RPIAAS_MAX_INPUT_MB", "MB")
DEPTH = Limit("nesting depth", 50, "RPIAAS_MAX_DEPTH", "levels", ceiling=200)
ALIAS_VALUES = Limit("values added by YAML aliases", 100_000, "RPIAAS_MAX_ALIAS_VALUES", "values")
NODES = Limit("nodes in a cluster", 1_000_000, "RPIAAS_MAX_NODES", "nodes")
TASKS = Limit("tasks in a run", 100_000_000, "RPIAAS_MAX_TASKS", "tasks")
SIM_TIME_S = Limit("simulated time", 1e10, "RPIAAS_MAX_SIM_TIME_S", "s")
SAMPLE_ROWS = Limit("rows of nodes.csv", 10_000_000, "RPIAAS_MAX_SAMPLE_ROWS", "rows")

LIMITS = (INPUT_MB, DEPTH, ALIAS_VALUES, NODES, TASKS, SIM_TIME_S, SAMPLE_ROWS)
