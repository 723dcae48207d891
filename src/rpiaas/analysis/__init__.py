"""Analysis of run directories: comparison, calibration, statistics, reports.

- :mod:`.compare`: any runs compared with a reference (summary, task by task,
  node by node), the content of ``compare.json``;
- :mod:`.tables`: a comparison as terminal tables; :mod:`.report`: as one
  self-contained HTML page;
- :mod:`.calibrate`: node types fitted to a testbed run;
- :mod:`.stats`: KS, Wasserstein, Cohen's d, agreement (a sweep's Student t
  intervals are :mod:`rpiaas.sweep.ci`'s);
- :mod:`.gantt`: Gantt charts of runs (``rpiaas gantt``);
- :mod:`.frames`: runs as pandas DataFrames (``rpiaas.run``, ``rpiaas.load_run``).

A live run against its simulated twin (``fidelity.json``) is
:mod:`rpiaas.rundir.fidelity`'s.

Runs are read through :mod:`rpiaas.rundir.reader`.
"""
