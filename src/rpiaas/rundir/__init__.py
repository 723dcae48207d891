"""The run directory: one result format for simulated and live runs.

The only code that knows a run directory's files: :mod:`.format` (file names,
columns, ``run.json`` text), :mod:`.writer` (streaming a run and moving it into
place when it completes), :mod:`.place` (the move into place; :class:`RunCopy`, a
run directory copied file by file), :mod:`.reader` (reading a run back, with errors that
name the file and line), :mod:`.metrics` (the summary and the run record) and
:mod:`.sources` (where each figure comes from: measured, modelled from measured
utilisation, or modelled).
"""

from __future__ import annotations

from .format import FORMAT, NODE_COLUMNS, RUN_FILES, TASK_COLUMNS
from .metrics import RunNote, Stats, run_record
from .place import RunCopy
from .reader import Run, RunFileError, is_complete, load_run, read_run
from .writer import RunWriter

__all__ = ["FORMAT", "NODE_COLUMNS", "RUN_FILES", "TASK_COLUMNS", "Run", "RunCopy", "RunFileError", "RunNote",
           "RunWriter", "Stats", "is_complete", "load_run", "read_run", "run_record"]
