"""The threads numpy's BLAS may start in an rpiaas process: one.

rpiaas does no heavy linear algebra (a calibration's least squares, a
report's fits on a few hundred points), while a simulation, its writer
process, a sweep's workers and a testbed's agents share the machine's cores.
OpenBLAS, which numpy's wheels carry, starts a thread per core when numpy is
imported, and its idle threads first wait busily: on two cores that spinning
took 0.1 CPU s of a 0.4 s run, and a tenth of a writer process's CPU.  The
``rpiaas`` command and the processes rpiaas starts ask for one thread, unless
the environment already says how many (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``); a script that imports rpiaas as a
library decides for itself.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["BLAS_THREADS", "one_blas_thread"]

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """``env`` (this process's environment by default) with one BLAS thread asked for where it
    names no number; it must be set before numpy is imported to take effect."""
    env = os.environ if env is None else env
    for name in BLAS_THREADS:
        env.setdefault(name, "1")
    return env
