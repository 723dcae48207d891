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
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rundir.reader import is_complete, read_run, read_timing
from ..rundir.writer import remove_partials_of
from ..source import InputError
from .grid import RunSpec, expand, parse_seeds
from .summary import aggregate

__all__ = ["SweepResult", "run_cli", "run_one", "sweep"]


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
    row.update(record["summary"])
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
                    bar.write(f"run {spec.name} failed: {error}")
                bar.update(1)
    finally:
        bar.close()
    ordered = [rows[s.name] for s in specs if s.name in rows]
    # what attempts killed mid-run left behind, for runs now complete
    remove_partials_of(out / "runs", {Path(s.out).name for s in specs if is_complete(s.out)})
    aggregate(ordered, out, plots=plots)
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

    def write(self, text: str) -> None:
        print(text, file=sys.stderr)

    def close(self) -> None:
        pass


def _bar(total: int, done: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="run", desc="sweep", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def run_cli(args: Any, progress_out: Callable[[str], None] = print) -> int:
    """``rpiaas sweep``: expand, run, aggregate, print the table; the exit code."""
    seeds = parse_seeds(args.seeds) if args.seeds else None
    out = Path(args.out) if args.out else Path("runs") / ("sweep-" + Path(args.scenarios[0]).stem)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"expected a positive number of workers, got {args.workers}", "--workers")
    notes: list[str] = []
    specs = expand(args.scenarios, args.policy, seeds, args.overrides, out,
                   event_log=not args.no_event_log, skip_bad_lines=args.skip_bad_lines, notes=notes)
    for note in notes:
        print(note, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        result = sweep(specs, out, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.quiet, connect_timeout_s=args.connect_timeout)
    except KeyboardInterrupt:
        done = sum(is_complete(s.out) for s in specs)
        print(f"interrupted: {done} of {len(specs)} runs done; the same command continues the sweep",
              file=sys.stderr)
        return 130
    if not args.quiet:
        progress_out((out / "summary.txt").read_text().rstrip())
    progress_out(f"{len(specs)} runs ({result.ran} run now, {result.reused} already done, "
                 f"{len(result.failed)} failed) in {time.perf_counter() - t0:.1f} s: {out}")
    return 1 if result.failed else 0
