"""Reading input files: YAML and JSON with file:line:key errors, and the input limits.

:mod:`~rpiaas.inputs.source` parses a document and locates every error by
file, line and key path; :mod:`~rpiaas.inputs.yamlload` is its bounded YAML
loader; :mod:`~rpiaas.inputs.limits` holds the limits on what an input may
make rpiaas do and :mod:`~rpiaas.workload.bounds` checks a scenario's run
against them before it starts.
"""

from __future__ import annotations

from .limits import LIMITS, Limit
from .source import InputError, KeyPath, LimitError, Source, load, load_file

__all__ = ["LIMITS", "InputError", "KeyPath", "Limit", "LimitError", "Source", "load", "load_file"]
