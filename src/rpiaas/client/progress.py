"""How ``rpiaas run --live`` shows a run's progress: a bar on a terminal, else a few lines.

The client asks the master for the run twice a second.  On a terminal a
tqdm bar counts the ended tasks (of the workload's size when the master
knows it) with the queue and the running tasks beside it.  Anywhere else (a
log file, CI) a line is written at the start, then when another tenth of the
workload has ended or, if a count changed, when :data:`LINE_EVERY_S` have
passed since the last line, whichever comes first; and the last counts at
the end.  A run of any size so writes about a dozen lines, plus one per
:data:`LINE_EVERY_S` of a long run.  A run held for lack of disk space on the
master (``held`` in its document) is said in a line of its own when the hold
begins and when it ends.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["LINE_EVERY_S", "RunProgress"]

_COUNTS = ("arrived", "queued", "running", "ended")
LINE_EVERY_S = 10.0  # off a terminal: a line at least this often while counts change
STEPS = 10  # off a terminal: a line for each tenth of the workload ended


class RunProgress:
    """Shows the run documents given to :meth:`update`; :meth:`close` when the run is over."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else tty
        self.clock = clock
        self._bar: tqdm[Any] | None = None
        self._last: tuple[Any, ...] | None = None  # the counts the bar shows (on a terminal)
        self._shown: tuple[Any, ...] | None = None  # the counts of the last line (off one)
        self._shown_at = 0.0  # when that line was written (clock s)
        self._step = -1  # the tenth of the workload that line had reached
        self._pending: dict[str, Any] | None = None  # a run whose changed counts have no line yet
        self._held = ""  # why the run is held (``held`` in its document), "" while it is not
        self.lines = 0  # lines written (not on a terminal)

    def update(self, run: dict[str, Any]) -> None:
        """Take in ``run`` (``GET /api/v1/runs/{id}``): the bar moves if a count changed; off a
        terminal a line is written by the rule above."""
        held = str(run.get("held") or "")
        if held != self._held:  # said once, apart from the bar: no start until it ends
            self._say(f"  run held: {held} (running tasks go on; it goes on by itself once there is space)"
                      if held else "  run goes on: its files are written again")
            self._held = held
        counts = tuple(run.get(k, 0) for k in _COUNTS)
        if self.tty:
            if counts != self._last:  # else the scenario clock alone moved: nothing to say
                self._show_bar(run, counts)
            self._last = counts
            return
        if counts == self._shown:
            self._pending = None
            return
        step = _step(run)
        now = self.clock()
        if self._shown is None or step > self._step or now - self._shown_at >= LINE_EVERY_S:
            self._line(run, counts, step, now)
        else:
            self._pending = run

    def _show_bar(self, run: dict[str, Any], counts: tuple[Any, ...]) -> None:
        _arrived, queued, running, ended = counts
        total = run.get("tasks_total")
        if self._bar is None:
            self._bar = tqdm(total=total, file=self.stream, unit="task", desc="ended",
                             dynamic_ncols=True, leave=True)
        elif total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.n = ended
        self._bar.set_postfix_str(f"{queued} queued, {running} running, "
                                  f"t={run.get('now_s', 0.0):.1f} s", refresh=False)
        self._bar.refresh()

    def _line(self, run: dict[str, Any], counts: tuple[Any, ...], step: int, now: float) -> None:
        arrived, queued, running, ended = counts
        total = run.get("tasks_total")
        of = f" of {total}" if isinstance(total, int) else ""
        print(f"  t={run.get('now_s', 0.0):.1f} s: {arrived} arrived, {queued} queued, "
              f"{running} running, {ended}{of} ended", file=self.stream, flush=True)
        self.lines += 1
        self._shown, self._shown_at, self._step, self._pending = counts, now, step, None

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
            self.lines += 1

    def close(self) -> None:
        """End the bar (its line stays on the terminal), or write the last counts not yet shown."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._pending is not None:
            run = self._pending
            self._line(run, tuple(run.get(k, 0) for k in _COUNTS), _step(run), self.clock())


def _step(run: dict[str, Any]) -> int:
    """The tenths of the workload ended (0 to :data:`STEPS`); 0 when its size is not known."""
    total = run.get("tasks_total")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        return 0
    return min(STEPS, math.floor(STEPS * int(run.get("ended", 0)) / total))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
