"""The live runs of one master, by id: create, start, report task ends, cancel, resume.

Each run lives in ``runs_dir/<id>/`` (the id the request asked for, with
``-2``, ``-3``, ... when a run has it already; else the scenario's name and
the time): the scenario as it was sent
(``scenario.json``, kept for a resume: a new run's scenario is parsed from
the same text, never read back), the journal, then the result.  A run that has a journal,
no result and was not cancelled is unfinished: :meth:`RunManager.resume_all`
takes every such run up again.  This is the runs' logic only; the master's
HTTP routes (:mod:`rpiaas.master.runs_api`) call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inputs.power import without_credentials
from ..inputs.source import InputError, KeyPath, Source, load
from ..rundir import is_complete
from ..scenario import Scenario, load_scenario, parse_scenario
from ..store import HistoryStore
from .agent_client import AgentClient
from .hold import DEFAULT_HOLD_LIMIT_S, RunSuspended
from .journal import JOURNAL, read_head
from .memory import release_free_memory
from .options import RESULT, RUN_ID_MAX, AgentNode, LiveOptions, RunState, check_run_id, safe_run_id
from .result import Twin
from .shell import LiveRun

__all__ = ["CANCELLED", "SCENARIO_FILE", "EndedRun", "RunFacts", "RunManager"]

log = logging.getLogger(__name__)

SCENARIO_FILE = "scenario.json"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunFacts:
    """What the runs API shows of a run besides its state: how it runs and how large it is."""

    policy: str
    queue: str | None
    tasks_total: int | None  # None: the workload's size is not known in advance
    horizon_s: float | None
    task_kind: str
    timescale: float

    @classmethod
    def of(cls, scenario: Scenario, options: LiveOptions) -> RunFacts:
        return cls(scenario.policy.name, scenario.queue.name if scenario.queue else None,
                   scenario.workload.count, scenario.horizon_s, options.task_kind, options.timescale)


@dataclass(frozen=True)
class EndedRun:
    """A run that ended (completed, failed, suspended or cancelled) as its master keeps it: its
    state, directory and facts, not its control plane, tasks and scenario, so that a master
    running for months holds a few hundred bytes per run it ran.  ``status`` is the run's own
    (a cancel that is still finishing sets its state)."""

    id: str
    status: RunState
    directory: Path
    facts: RunFacts


def _parse(text: str, path: Path) -> Scenario:
    """The scenario of ``text``, as if read from ``path`` (which is where it is kept)."""
    raw: dict[KeyPath, str] = {}
    data, lines = load(text, str(path), raw)
    return parse_scenario(Source(data, lines, str(path), base=path.parent, raw=raw))


class RunManager:
    """The live runs of one master, by id.

    :param runs_dir: where the runs' directories are.
    :param agent: the agent of a node, by node name (None: a node the master does not know).
    :param client: the agent client the runs share.
    :param store: the master's history store (the runs' measured node series).
    :param watch_interval_s: how often a run looks its running tasks up on their agents.
    :param twin: simulates a scenario for a run's ``fidelity.json`` (None: no twin).
    :param hold_limit_s: how long a resumed run may be held for lack of disk space.
    """

    def __init__(self, runs_dir: Path, agent: Callable[[str], AgentNode | None],
                 client: AgentClient, store: HistoryStore, watch_interval_s: float = 1.0,
                 twin: Twin | None = None, hold_limit_s: float = DEFAULT_HOLD_LIMIT_S) -> None:
        self.hold_limit_s = hold_limit_s
        self.runs_dir = runs_dir
        self.agent = agent
        self.client = client
        self.store = store
        self.watch_interval_s = watch_interval_s
        self.twin = twin
        self.runs: dict[str, LiveRun | EndedRun] = {}  # the running as LiveRun, the rest ended
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # the running runs' tasks
        self.trims = 0  # times the allocator's free pages were handed back (after runs ended)

    def _free_id(self, wanted: str) -> str:
        """``wanted`` if no run of this master has it (now or in ``runs_dir``), else the first
        free of ``wanted-2``, ``wanted-3``, ... (shortened to stay a run id)."""
        run_id, k = wanted, 1
        while run_id in self.runs or (self.runs_dir / run_id).exists():
            k += 1
            suffix = f"-{k}"
            run_id = wanted[:RUN_ID_MAX - len(suffix)] + suffix
        return run_id

    def create(self, scenario_data: dict[str, Any], file_name: str, options: LiveOptions,
               notify_url: str | None, run_id: str | None = None) -> LiveRun:
        """Check and start a run; InputError or ValueError (nothing started) if it cannot run.

        ``run_id``: the id asked for (a run id, :func:`~.options.check_run_id`), taken with a
        numeric suffix when a run has it; None: the scenario's name and the time.
        """
        if run_id is None:
            name = str(scenario_data.get("name") or Path(file_name).stem or "run")
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            run_id = f"{safe_run_id(name, 60) or 'run'}-{stamp}"
        run_id = self._free_id(check_run_id(run_id))
        directory = self.runs_dir / run_id
        directory.mkdir(parents=True)
        try:
            # parsed as the text kept for a resume, so an error names that text's lines; the
            # credentials of a power: or meter: it carries are not kept (the master switches and
            # meters its nodes through its own cluster's, never through a scenario's)
            path = directory / SCENARIO_FILE
            text = json.dumps(without_credentials(scenario_data), indent=2) + "\n"
            run = self._build(run_id, directory, _parse(text, path), options, notify_url)
            path.write_text(text, encoding="utf-8")
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._start(run)
        return run

    def _build(self, run_id: str, directory: Path, scenario: Scenario, options: LiveOptions,
               notify_url: str | None) -> LiveRun:
        unknown = [n.name for n in scenario.cluster.nodes if self.agent(n.name) is None]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10
                                               else "")
            raise ValueError("the scenario's cluster names nodes this master does not know: "
                             f"{shown}")
        entries = [e for n in scenario.cluster.nodes if (e := self.agent(n.name)) is not None]
        return LiveRun(run_id, scenario, entries, self.client, self.store, directory, options,
                       notify_url, twin=self.twin)

    def _start(self, run: LiveRun) -> None:
        self.runs[run.id] = run
        facts = RunFacts.of(run.scenario, run.options)

        async def go() -> None:
            try:
                result = await run.run()
                log.info("run %s: completed: %s", run.id, result)
            except asyncio.CancelledError:
                raise
            except RunSuspended as e:  # no result, its journal kept: --resume goes on with it
                run.status.state = "suspended"
                run.status.error = str(e)
                log.error("run %s suspended: %s", run.id, e)
            except Exception as e:
                run.status.state = "failed"
                run.status.error = f"{type(e).__name__}: {e}"
                log.exception("run %s failed", run.id)
            finally:  # the run's objects go: its record stays
                self.runs[run.id] = EndedRun(run.id, run.status, run.directory, facts)
                self.tasks.pop(run.id, None)
                # the run's last frames and futures go with this task: trim once they have
                asyncio.get_running_loop().call_soon(self._trim)

        self.tasks[run.id] = asyncio.create_task(go(), name=f"rpiaas-run-{run.id}")

    def _trim(self) -> None:
        """After a run ended: hand what the C allocator keeps free back to the system, so a
        master that hosts run after run does not grow by each one's fragments."""
        if release_free_memory():
            self.trims += 1

    def running(self) -> list[LiveRun]:
        """The runs still running."""
        return [run for run in self.runs.values() if isinstance(run, LiveRun) and run.status.state == "running"]

    def facts(self, run_id: str) -> RunFacts:
        """How run ``run_id`` runs and how large it is."""
        run = self.runs[run_id]
        return run.facts if isinstance(run, EndedRun) else RunFacts.of(run.scenario, run.options)

    def placements(self) -> dict[str, list[dict[str, Any]]]:
        """What each node runs now for the running runs: ``{node: [{"run", "task"}, ...]}``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for run in self.running():
            for node, task_ids in run.placements().items():
                out.setdefault(node, []).extend({"run": run.id, "task": t} for t in task_ids)
        return out

    def allocated(self) -> dict[str, tuple[int, int]]:
        """The cores and memory the running runs' tasks reserve on each node now."""
        out: dict[str, tuple[int, int]] = {}
        for run in self.running():
            for node, (cores, mem_mb) in run.allocated().items():
                had = out.get(node, (0, 0))
                out[node] = (had[0] + cores, had[1] + mem_mb)
        return out

    def report(self, doc: dict[str, Any], node: str) -> bool | None:
        """Node ``node``'s pushed task end: whether a run knew the task; None if another node
        runs it."""
        running = self.running()
        owners = {owner for run in running if (owner := run.node_of(doc.get("id"))) is not None}
        if owners and node not in owners:
            return None
        return any(run.report(doc, node) for run in running)

    def booted(self, node: str, unix_s: float) -> bool:
        """Node ``node``'s boot report, accepted at unix time ``unix_s``: the running run that
        switched it on takes it as booted then.  Whether one did."""
        return any([run.booted(node, unix_s) for run in self.running()])

    async def cancel(self, run_id: str) -> None:
        """Stop run ``run_id``: its tasks are killed on their agents; it leaves no result."""
        run = self.runs[run_id]
        if not isinstance(run, LiveRun):  # it ended meanwhile
            return
        task = self.tasks.get(run_id)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await run.cancel()
        (run.directory / CANCELLED).write_text("cancelled through the API\n")

    def unfinished(self) -> list[Path]:
        """Run directories with a journal, no result and not cancelled."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(d for d in self.runs_dir.iterdir()
                      if (d / JOURNAL).is_file() and not is_complete(d / RESULT)
                      and not (d / CANCELLED).exists() and (d / SCENARIO_FILE).is_file())

    def resume_all(self) -> list[str]:
        """Take up every unfinished run again; their ids (a run that cannot go on is logged)."""
        resumed = []
        for directory in self.unfinished():
            head = read_head(directory / JOURNAL)
            options = LiveOptions(float(head["timescale"]), str(head["task_kind"]),
                                  self.watch_interval_s, self.hold_limit_s)
            try:
                scenario = load_scenario(directory / SCENARIO_FILE)
                run = self._build(directory.name, directory, scenario, options,
                                  head.get("notify_url"))
            except (InputError, ValueError) as e:
                log.error("run %s cannot be resumed: %s", directory.name, e)
                continue
            self._start(run)
            resumed.append(run.id)
        return resumed

    async def close(self) -> None:
        """Stop following the runs (their tasks go on; ``--resume`` takes them up again)."""
        tasks = list(self.tasks.values())  # (each ended one leaves the dict)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
