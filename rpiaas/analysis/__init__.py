"""Analysis of run directories: comparison, calibration, statistics, reports.

- :mod:`.compare`: any runs compared with a reference (summary, task by task,
  node by node), the content of ``compare.json``;
- :mod:`.tables`: a comparison as terminal tables; :mod:`.report`: as one
  self-contained HTML page;
- :mod:`.calibrate`: node types fitted to a testbed run;
- :mod:`.stats`: KS, Wasserstein, Cohen's d, agreement, Student t intervals
  (shared with :mod:`rpiaas.sweep`);
- :mod:`.fidelity`: a live run against its simulated twin (``fidelity.json``).

Runs are read through :mod:`rpiaas.rundir.reader`.
"""
