"""Sweeps: a grid of runs (scenarios x policies x parameter values x seeds) and its statistics.

- :mod:`.grid`: :func:`expand` turns the command line into :class:`RunSpec`
  objects, each naming its own run directory under ``OUT/runs/``;
- :mod:`.runner`: :func:`sweep` runs those not yet done, on a local process
  pool or a Dask distributed cluster, and aggregates them;
- :mod:`.summary`: ``sweep.csv``, ``summary.csv`` (mean, standard deviation
  and the 95 % confidence interval of each metric), ``summary.txt``, plots
  and ``report.html`` (:mod:`.report`: the table and every plot on one page).

``docs/sweep.md`` has the details.
"""

from __future__ import annotations

from .grid import RunSpec, expand, parse_seeds, split_values
from .runner import SweepResult, run_one, sweep
from .summary import aggregate

__all__ = ["RunSpec", "SweepResult", "aggregate", "expand", "parse_seeds", "run_one", "split_values",
           "sweep"]
