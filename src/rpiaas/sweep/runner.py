"""Running a sweep: the runs not yet done, on a local process pool or a Dask cluster.

:func:`sweep` runs each :class:`~rpiaas.sweep.grid.RunSpec` whose run
directory is not complete, on a local process pool (every core by default)
or on a Dask distributed cluster (``scheduler="tcp://host:8786"``), then
hands the rows to :func:`rpiaas.sweep.summary.aggregate`.  A run is done when
its directory is complete (:func:`rpiaas.rundir.reader.is_complete`): the
simulator moves a run directory into place only when the run completes, so
an interrupted sweep started again redoes only the runs that had not
finished, and a run redone elsewhere after a worker died is still written
exactly once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inputs.source import InputError
from ..rundir.metrics import flat_summary
from ..rundir.reader import is_complete, read_run, read_timing
from ..rundir.writer import remove_partials_of
from .grid import RunSpec
from .summary import aggregate

__all__ = ["SweepResult", "run_one", "sweep"]


@dataclass
class SweepResult:
    """What :func:`sweep` did: rows of ``sweep.csv``, the runs it ran now, the failures."""

    out: Path
    rows: list[dict[str, Any]]
    ran: int
    reused: int
    failed: dict[str, str] = field(default_factory=dict)  # run name -> error


# ---------------------------------------------------------------- one run
def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` unless its run directory is complete; its row of ``sweep.csv``.

    Runs in a pool process or on a Dask worker, so it is a plain top-level function.
    """
    out = Path(spec.out)
    if not is_complete(out):
        from ..sim import simulate

        simulate(spec.load(), out)
    return _row(spec)


def _row(spec: RunSpec) -> dict[str, Any]:
    out = Path(spec.out)
    record = read_run(out)
    row: dict[str, Any] = {"run": spec.name, "scenario": spec.scenario_name,
                           "policy": record["policy"], "seed": record["seed"]}
    row.update({f"set:{k}": v for k, v in spec.overrides})
    row.update(flat_summary(record["summary"]))  # a node type's figures in columns of their own
    timing = read_timing(out)
    row["wall_s"] = timing.get("wall_s") if timing is not None else None
    return row


# ---------------------------------------------------------------- running the grid
def sweep(specs: Sequence[RunSpec], out: str | Path, scheduler: str | None = None,
          workers: int | None = None, progress: bool = True, connect_timeout_s: float = 5.0,
          plots: bool = True) -> SweepResult:
    """Run the runs of ``specs`` not yet done, then write ``sweep.csv``, ``summary.csv`` and plots."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    todo = [s for s in specs if not is_complete(s.out)]
    rows: dict[str, dict[str, Any]] = {s.name: _row(s) for s in specs if s not in todo}
    failed: dict[str, str] = {}
    client = _client(scheduler, connect_timeout_s) if scheduler and todo else None
    bar = _bar(len(specs), len(rows), progress)
    try:
        if todo:
            outcomes = _dask(todo, client) if client is not None else _pool(todo, workers)
            for spec, row, error in outcomes:
                if error is None:
                    rows[spec.name] = row
                else:
                    failed[spec.name] = error
                    bar.write(f"run {spec.name} failed: {error}", file=sys.stderr)
                bar.update(1)
    finally:
        bar.close()
    ordered = [rows[s.name] for s in specs if s.name in rows]
    # what attempts killed mid-run left behind, for runs now complete
    remove_partials_of(out / "runs", {Path(s.out).name for s in specs if is_complete(s.out)})
    swept = list(dict.fromkeys(f"set:{k}" for s in specs for k, _ in s.overrides))
    aggregate(ordered, out, plots=plots, params=swept)
    return SweepResult(out, ordered, len(todo) - len(failed), len(specs) - len(todo), failed)


Outcome = tuple[RunSpec, dict[str, Any], str | None]


def _pool(todo: Sequence[RunSpec], workers: int | None) -> Iterable[Outcome]:
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    pool = ProcessPoolExecutor(max_workers=n)
    try:
        futures: dict[Future[dict[str, Any]], RunSpec] = {pool.submit(run_one, s): s for s in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                exc = f.exception()
                yield futures[f], (f.result() if exc is None else {}), _error(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _client(address: str, timeout_s: float) -> Any:
    """A Dask client connected to ``address``, or an InputError within ``timeout_s``."""
    try:
        import distributed
    except ImportError as e:
        raise InputError(f"--scheduler needs the distributed package (pip install 'rpiaas[sweep]'): {e}",
                         "--scheduler") from None
    dd: Any = distributed  # untyped
    try:
        return dd.Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
                         f"({type(e).__name__}: {e})", "--scheduler") from None


def _dask(todo: Sequence[RunSpec], client: Any) -> Iterable[Outcome]:
    """Each run a Dask task; the scheduler reruns elsewhere what a dying worker held."""
    import distributed

    dd: Any = distributed
    try:
        futures = {client.submit(run_one, s, key=f"rpiaas-run-{s.name}", pure=False): s for s in todo}
        for f in dd.as_completed(list(futures), loop=client.loop):
            exc = f.exception()
            yield futures[f], (f.result() if exc is None else {}), _error(exc)
    finally:
        client.close()


def _error(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    return str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def write(self, text: str, file: Any = None) -> None:
        print(text, file=file or sys.stderr)

    def close(self) -> None:
        pass


def _bar(total: int, done: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="run", desc="sweep", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
