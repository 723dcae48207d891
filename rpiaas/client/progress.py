"""How ``rpiaas run --live`` shows a run's progress: a bar on a terminal, else a line per change.

The client asks the master for the run twice a second.  On a terminal a
tqdm bar counts the ended tasks (of the workload's size when the master
knows it) with the queue and the running tasks beside it.  Anywhere else (a
log file, CI) a line is written only when a count changed, so a quiet
stretch of the run is one line, not the same line again and again.  A run
held for lack of disk space on the master (``held`` in its document) is said
in a line of its own when the hold begins and when it ends.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["RunProgress"]

_COUNTS = ("arrived", "queued", "running", "ended")


class RunProgress:
    """Shows the run documents given to :meth:`update`; :meth:`close` when the run is over."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else tty
        self._bar: tqdm[Any] | None = None
        self._last: tuple[Any, ...] | None = None
        self.lines = 0  # lines written (not on a terminal)

    def update(self, run: dict[str, Any]) -> None:
        """Show ``run`` (``GET /api/v1/runs/{id}``) if anything in it changed since the last."""
        held = str(run.get("held") or "")
        counts = (*(run.get(k, 0) for k in _COUNTS), held)
        if counts == self._last:  # the scenario clock alone moved: nothing to say
            return
        was_held = self._last is not None and bool(self._last[-1])
        self._last = counts
        arrived, queued, running, ended, _ = counts
        if held and not was_held:  # said once, apart from the bar: no start until it ends
            self._say(f"  run held: {held} (running tasks go on; it goes on by itself once "
                      "there is space)")
        elif was_held and not held:
            self._say("  run goes on: its files are written again")
        if self.tty:
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
            return
        total = run.get("tasks_total")
        of = f" of {total}" if isinstance(total, int) else ""
        print(f"  t={run.get('now_s', 0.0):.1f} s: {arrived} arrived, {queued} queued, "
              f"{running} running, {ended}{of} ended", file=self.stream, flush=True)
        self.lines += 1

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
            self.lines += 1

    def close(self) -> None:
        """End the bar (its line stays on the terminal)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
