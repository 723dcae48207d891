"""Scenario files: parse -> fill defaults -> validate -> build.

A scenario names a cluster, a workload, a policy (and optionally a queue
policy), a seed and a few run settings.  :func:`load_scenario` reads one from
YAML, applies ``--set`` style overrides, and either returns a
:class:`Scenario` or raises :class:`~rpiaas.inputs.source.InputError` naming the
file, line and key.  ``docs/scenario.md`` documents every key.
"""

from __future__ import annotations

import copy
import inspect
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from .inputs import limits
from .inputs.cluster import parse_cluster, read_cluster
from .inputs.images import parse_images
from .inputs.source import InputError, KeyPath, LimitError, Source, describe, load, load_file
from .model import ClusterSpec, Image, PowerState, Task, part_cores
from .policy.base import Policy, PolicyParamError
from .policy.plugins import UnknownPolicyError, get_plugin_manager, get_policy
from .workload import Generator, TaskList, Trace, WfInstance, WorkflowOptions, Workload, parse_workload
from .workload.bounds import check_scenario_bounds
from .workload.spread import SPREADS, split_procs
from .workload.workflow import parse_workflow_options

__all__ = ["PolicySpec", "Scenario", "load_scenario", "parse_scenario", "rng_streams",
           "with_overrides"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TOP_KEYS = ("name", "description", "seed", "horizon_s", "sample_interval_s", "retries",
            "initial_power", "event_log", "decision_trace", "faults", "cluster", "workload",
            "policy", "queue", "workflow", "walltime", "images")
WALLTIME_RULES = ("estimate", "kill")  # what a task's walltime_s is: an estimate, or a limit too


@dataclass(frozen=True)
class Fault:
    """A node failure injected in simulation: down at ``at_s``, back after ``down_s``."""

    node: int
    at_s: float
    down_s: float | None = None  # None: stays down
    reason: str = "injected fault"


@dataclass(frozen=True)
class PolicySpec:
    """A policy by name with its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    cls: type[Policy] | None = field(default=None, compare=False, repr=False)  # found on parse

    def create(self, rng: Any = None) -> Policy:
        cls = self.cls if self.cls is not None else get_policy(self.name).cls
        return cls.create(dict(self.params), rng)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to run in either shell."""

    name: str
    cluster: ClusterSpec
    workload: Workload
    policy: PolicySpec
    queue: PolicySpec | None
    seed: int
    horizon_s: float | None
    sample_interval_s: float
    retries: int
    initial_power: PowerState
    data: dict[str, Any]  # the scenario as given, with defaults filled (for run.json)
    file: str | None = None
    description: str = ""
    event_log: bool = True  # write events.jsonl (large runs may turn it off)
    faults: tuple[Fault, ...] = ()
    decision_trace: bool = False  # write decisions.jsonl (the per-decision trace)
    # the cluster file's data, when ``data["cluster"]`` names a file (None: the cluster is inline)
    cluster_data: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # how tasks that wait for others are released (None: no task of the workload waits for another)
    workflow: WorkflowOptions | None = None
    # ``kill``: a task still running at ``walltime_s`` after its start is killed (reason
    # ``walltime``), as Slurm does; ``estimate`` (the default): walltime_s is only an estimate
    walltime: str = "estimate"
    # the container images the tasks run, by name (``images:``; empty: no pull is modelled)
    images: dict[str, Image] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The scenario as one document, as a master takes it (``rpiaas run --live``): as
        given (defaults filled), with its cluster inline.

        A trace workload is given as the task list it makes (the master need
        not have the trace file); a generator as it is, the master draws the
        same tasks from the same seed.
        """
        data = dict(self.data)
        if self.cluster_data is not None:
            data["cluster"] = self.cluster_data
        if isinstance(self.workload, (Trace, WfInstance)):
            tasks = self.workload.tasks(rng_streams(self.seed)["workload"])
            data["workload"] = {"tasks": [_task_json(t) for t in tasks]}
        return data

    def policies(self, rng: Any = None) -> list[Policy]:
        """Policy instances in registration order (the main policy last, so asked first)."""
        out = []
        if self.queue is not None:
            out.append(self.queue.create(rng))
        out.append(self.policy.create(rng))
        return out


def _task_json(t: Task) -> dict[str, Any]:
    """A task as an inline workload writes it."""
    out: dict[str, Any] = {"id": t.id, "arrival_s": t.arrival_s, "cores": t.cores,
                           "mem_mb": t.mem_mb, "work_core_s": t.work_core_s, "kind": t.kind}
    if t.tenant:
        out["tenant"] = t.tenant
    if t.priority:
        out["priority"] = t.priority
    if t.walltime_s is not None:
        out["walltime_s"] = t.walltime_s
    if t.command is not None:
        out["command"] = list(t.command)
    if t.env:
        out["env"] = dict(t.env)
    if t.after:
        out["after"] = list(t.after)
    out.update(_job_json(t))
    if t.image is not None:
        out["image"] = t.image
    if t.network:
        out["network"] = True
    return out


def _job_json(t: Task) -> dict[str, Any]:
    """A parallel job's shape as an inline task gives it (``nodes``, or ``procs`` and
    ``spread``), read back into the same ``cores``, ``nodes``, ``parts`` and ``procs``."""
    if t.nodes == 1 and not t.procs:
        return {}
    if not t.parts and not t.procs:
        return {"nodes": t.nodes}
    procs = t.procs or sum(t.parts)
    for spread in SPREADS:
        parts = split_procs(procs, spread, t.cores)
        equal = all(p == parts[0] for p in parts)
        if (len(parts), () if equal else parts, 0 if sum(parts) == procs else procs) == \
                (t.nodes, t.parts, t.procs):
            return {"procs": procs, "spread": spread}
    raise ValueError(f"task {t.id}: a job of parts {part_cores(t)} and {procs} processes that no "
                     "inline task can give")


class Override(tuple):  # type: ignore[type-arg]
    """A ``(key, value)`` pair that also remembers the text the value was written as."""

    raw: str | None = None


def parse_overrides(pairs: list[str], notes: list[str] | None = None) -> list[tuple[str, Any]]:
    """``["a.b=1", ...]`` to ``[("a.b", 1), ...]``; values are read as YAML scalars.

    Each pair keeps the text it was read from (``.raw``), so that a string key
    given a value YAML reads as a number (``prefix=10.10``) keeps its text.  A
    value that is not valid YAML is taken as a string; ``notes`` (if given)
    receives one line saying so for each.
    """
    out: list[tuple[str, Any]] = []
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"expected key.path=value, got {describe(pair)}", "--set")
        key, _, text = pair.partition("=")
        raw_map: dict[KeyPath, str] = {}
        try:
            value = load(text, "--set", raw_map)[0] if text.strip() else ""
        except LimitError as e:
            raise LimitError(e.message, "--set", None, key.strip()) from None
        except InputError as e:
            value = text
            if notes is not None:
                notes.append(f"--set {key.strip()}: {e.message.split(':', 1)[0]}; "
                             f"read as the string {describe(text)}")
        item = Override((key.strip(), value))
        item.raw = raw_map.get(())
        out.append(item)
    return out


def _overrides(overrides: Any) -> list[tuple[str, Any]]:
    """The ``overrides`` of :func:`load_scenario` as pairs: a mapping, ``"k=v"`` strings or
    pairs."""
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, (str, bytes)) or not hasattr(overrides, "__iter__"):
        raise InputError("expected a mapping of key paths to values, a list of 'key.path=value' "
                         f"strings or of (key.path, value) pairs, got {describe(overrides)}",
                         "overrides")
    out: list[tuple[str, Any]] = []
    for i, item in enumerate(overrides):
        if isinstance(item, str):
            out.extend(parse_overrides([item]))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            out.append(item if isinstance(item, Override) else (item[0], item[1]))
        else:
            raise InputError(f"expected 'key.path=value' or a (key.path, value) pair, got "
                             f"{describe(item)}", "overrides", None, f"[{i}]")
    return out


def load_scenario(path: str | Path,
                  overrides: Mapping[str, Any] | Iterable[tuple[str, Any] | str] = (),
                  seed: int | None = None, policy: str | None = None) -> Scenario:
    """Read, override, validate and build a scenario file.

    ``overrides`` is a mapping ``{"workload.generator.count": 500}``, or a list
    of ``"key.path=value"`` strings (as ``--set``) or of ``(key.path, value)``
    pairs.

    ``policy`` (``--policy``) replaces the scenario's policy and its
    parameters (unless it names the same policy); ``overrides`` (``--set``)
    are applied after it, so they can set the new policy's parameters;
    ``seed`` (``--seed``) last.
    """
    return _build(load_file(path), overrides, seed, policy)


def with_overrides(scenario: Scenario,
                   overrides: Mapping[str, Any] | Iterable[tuple[str, Any] | str] = (),
                   seed: int | None = None, policy: str | None = None) -> Scenario:
    """``scenario`` built again with ``overrides``, ``seed`` and ``policy`` as
    :func:`load_scenario` applies them to a file."""
    base = Path(scenario.file).resolve().parent if scenario.file else None
    src = Source(copy.deepcopy(scenario.data), {}, scenario.file or "<scenario>", base=base)
    return _build(src, overrides, seed, policy)


def _build(src: Source, overrides: Mapping[str, Any] | Iterable[tuple[str, Any] | str],
           seed: int | None, policy: str | None) -> Scenario:
    if policy is not None:
        current = src.data.get("policy") if isinstance(src.data, dict) else None
        same = current == policy or (isinstance(current, dict) and current.get("name") == policy)
        if not same:
            src.override("policy", {"name": policy}, origin="--policy")
    for item in _overrides(overrides):
        key, value = item
        head = key.split(".", 1)[0]
        if "." in key and head in ("policy", "queue") and isinstance(src.data, dict) \
                and isinstance(src.data.get(head), str):
            # ``policy: best_fit`` plus ``--set policy.params.x=1``: spell the policy out
            src.data[head] = {"name": src.data[head]}
        src.override(key, value, raw=getattr(item, "raw", None))
    if seed is not None:
        src.override("seed", seed, origin="--seed")
    return parse_scenario(src)


def parse_scenario(src: Source) -> Scenario:
    root: KeyPath = ()
    if src.data is None:
        src.fail(root, "empty scenario")
    m = src.mapping(root, src.data, TOP_KEYS, required=("cluster", "workload", "policy"))
    name = src.string(("name",), m.get("name", Path(src.file).stem))
    if not _NAME.match(name):
        src.fail(("name",), f"expected letters, digits, '.', '_' or '-' (it names the run "
                            f"directory), got {name!r}")
    seed = src.integer(("seed",), m.get("seed", 0), minimum=0)
    horizon = (src.number(("horizon_s",), m["horizon_s"], positive=True)
               if m.get("horizon_s") is not None else None)
    sample = src.number(("sample_interval_s",), m.get("sample_interval_s", 60.0), positive=True)
    retries = src.integer(("retries",), m.get("retries", 0), minimum=0)
    initial = src.choice(("initial_power",), m.get("initial_power", "on"), ("on", "off"))
    event_log = src.boolean(("event_log",), m.get("event_log", True))
    decision_trace = src.boolean(("decision_trace",), m.get("decision_trace", False))
    walltime = src.choice(("walltime",), m.get("walltime", "estimate"), WALLTIME_RULES)
    cluster_data = None
    if isinstance(m["cluster"], str) and src.is_file(m["cluster"]):
        cluster, cluster_data = read_cluster(src.base / m["cluster"])
    else:
        cluster = parse_cluster(src, ("cluster",), m["cluster"])
    faults = _faults(src, ("faults",), m.get("faults", []), cluster)
    workload = parse_workload(src, ("workload",), m["workload"])
    images = parse_images(src, ("images",), m["images"]) if m.get("images") is not None else {}
    if images:
        _check_images(src, workload, images)
    if isinstance(workload, Trace):  # its jobs are mapped onto the node types
        types = {n.type.name: n.type for n in cluster.nodes}
        workload = workload.bind([(t.cores, t.mem_mb) for t in types.values()],
                                 sum(n.type.cores for n in cluster.nodes))
    _check_fits(src, cluster, workload)
    check_scenario_bounds(src, cluster, workload, horizon, sample)
    policy = _policy(src, ("policy",), m["policy"])
    queue = _policy(src, ("queue",), m["queue"]) if m.get("queue") is not None else None
    for spec, slot in ((policy, "policy"), (queue, "queue")):
        if spec is not None and spec.cls is not None:
            _check_kind(src, (slot,), spec.name, spec.cls, isinstance(m[slot], dict))
    if initial == "off":
        specs = [queue, policy] if queue is not None else [policy]
        pm = get_plugin_manager([spec.create() for spec in specs])
        if not pm.hook.rpiaas_power.get_hookimpls():
            src.fail(("initial_power",), f"every node starts off and policy {policy.name!r} never "
                                         "switches one on (use a power policy such as consolidate)")
    if workload.count is None and horizon is None:
        src.fail(("workload", "generator"), "an endless generator (no count) needs horizon_s")
    flow = parse_workflow_options(src, ("workflow",), m["workflow"]) \
        if m.get("workflow") is not None else WorkflowOptions()
    waits = isinstance(workload, (TaskList, Trace)) and workload.has_dependencies
    data = src.with_text(m)  # ``prefix: 10.10`` stays "10.10" in run.json
    if waits:
        data["workflow"] = {"on_failure": flow.on_failure}
    data.update(name=name, seed=seed, horizon_s=horizon, sample_interval_s=sample,
                retries=retries, initial_power=initial, event_log=event_log,
                decision_trace=decision_trace,
                policy={"name": policy.name, "params": policy.params},
                queue=None if queue is None else {"name": queue.name, "params": queue.params})
    return Scenario(name, cluster, workload, policy, queue, seed, horizon, sample, retries,
                    PowerState.ON if initial == "on" else PowerState.OFF, data, src.file,
                    src.string(("description",), m.get("description", "")), event_log, faults,
                    decision_trace, cluster_data, flow if waits else None, walltime=walltime,
                    images=images)


def _check_images(src: Source, workload: Workload, images: Mapping[str, Image]) -> None:
    """Every image an inline task names is one of ``images`` (the pull model needs its size)."""
    if not isinstance(workload, TaskList):
        return
    for t in workload.items:
        if t.image is not None and t.image not in images:
            i = workload.positions.get(t.id, 0)
            src.fail(("workload", "tasks", i, "image"),
                     f"image {t.image!r} is not among the scenario's images "
                     f"({', '.join(sorted(images)) or 'none'}): give its size_mb or layers there")


def _faults(src: Source, path: KeyPath, data: Any, cluster: ClusterSpec) -> tuple[Fault, ...]:
    out: list[Fault] = []
    if not src.sequence(path, data):
        return ()
    by_name = {n.name: n.index for n in cluster.nodes}
    for i, raw in enumerate(src.sequence(path, data)):
        fp = (*path, i)
        f = src.mapping(fp, raw, ("node", "at_s", "down_s", "reason"), required=("node", "at_s"))
        name = src.string((*fp, "node"), f["node"])
        if name not in by_name:
            src.fail((*fp, "node"),
                     f"no node named {name!r} in the cluster (names are hostname.domain)")
        down = (src.number((*fp, "down_s"), f["down_s"], positive=True)
                if f.get("down_s") is not None else None)
        at = src.number((*fp, "at_s"), f["at_s"], nonnegative=True)
        for key, t in (("at_s", at), ("down_s", at + (down or 0.0))):
            if t > limits.SIM_TIME_S.value():  # (a fault after the run's end is noted, not refused)
                src.fail((*fp, key), f"{t:g} s is beyond the longest simulated time "
                                     f"({limits.SIM_TIME_S.hint()})", LimitError)
        out.append(Fault(by_name[name], at, down,
                         src.string((*fp, "reason"), f.get("reason", "injected fault"))))
    return tuple(out)


def _param_blamed(src: Source, path: KeyPath, params: dict[str, Any], e: PolicyParamError) -> KeyPath:
    """Where a policy's refusal of its parameters points: the key it names, else a key its
    message names ("min_on must be >= 0"), else one set by ``--set``, else the only one given,
    else ``params``."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", e.message))
    key = e.key or next((k for k in params if k in words), "")
    if not key:
        key = next((k for k in params if (*path, "params", k) in src.overridden), "")
    if not key and len(params) == 1:
        key = next(iter(params))
    return (*path, "params", key) if key else (*path, "params")


def _warn_broken(broken: dict[str, str], name: str) -> None:
    """Warn of the broken entry points other than the scenario's own policy ``name``."""
    for other, message in broken.items():
        if other != name:  # not this scenario's, but a broken install should not pass unnoticed
            # from this line, so the default filter shows it once however often it is met
            warnings.warn(f"{message} (ignored: the scenario does not use it)", RuntimeWarning,
                          stacklevel=1)


def _policy(src: Source, path: KeyPath, data: Any) -> PolicySpec:
    if isinstance(data, str):
        name, params = data, {}
    elif not isinstance(data, dict):
        src.fail(path, "expected a policy name or a mapping with name and params, got "
                       f"{describe(data)}")
    else:
        m = src.mapping(path, data, ("name", "params"), required=("name",))
        name = src.string((*path, "name"), m["name"])
        raw_params = m.get("params")
        params = dict(src.mapping((*path, "params"), raw_params)) if raw_params is not None else {}
    where = (*path, "name") if isinstance(data, dict) else path
    broken: dict[str, str] = {}  # installed entry points that fail to load (none looked at for a built-in)
    try:
        info = get_policy(name, broken)
    except UnknownPolicyError as e:
        if name not in broken:
            _warn_broken(broken, name)
        src.fail(where, broken.get(name, str(e)))
    _warn_broken(broken, name)
    cls = info.cls
    known = cls.parameters()
    for key, p in known.items():
        if p.default is inspect.Parameter.empty and key not in params:
            src.fail((*path, "params"), f"missing parameter {key!r} of policy {name!r}")
    for key, p in known.items():  # the scenario's string rule: `mode: off` is the word, not false
        if key in params and (isinstance(p.default, str) or p.annotation in (str, "str")):
            params[key] = src.text((*path, "params", key), params[key])
    # instantiate and register once now, so a bad parameter or a misspelt hook
    # fails here, as an input error, and not in the middle of the run
    try:
        instance = cls.create(dict(params), rng=None)
    except PolicyParamError as e:
        src.fail(_param_blamed(src, path, params, e), e.message)
    except TypeError as e:
        src.fail((*path, "params"), f"policy {name!r} rejects its parameters: {e}")
    try:
        get_plugin_manager([instance])
    except pluggy.PluginValidationError as e:
        message = " ".join(str(e).split())
        src.fail(where, f"policy {name!r} ({info.origin}) is broken: {message}")
    full = {k: p.default for k, p in known.items() if p.default is not inspect.Parameter.empty}
    full.update(params)
    return PolicySpec(name, full, cls)


QUEUE_HOOKS = ("rpiaas_queue_order", "rpiaas_blocked")
PLACEMENT_HOOKS = ("rpiaas_admit", "rpiaas_place", "rpiaas_filter", "rpiaas_score",
                   "rpiaas_rebalance", "rpiaas_power")


def _check_kind(src: Source, path: KeyPath, name: str, cls: type[Policy], spelt_out: bool) -> None:
    """A queue policy goes under ``queue:``, a placement policy under ``policy:``.

    Told apart by their hooks: a queue policy implements only queue hooks (or,
    as ``fcfs``, none: the control plane's own order), a placement policy at
    least one of the others.  One that implements both fits either place.
    """
    hooks = {h for h in dir(cls) if getattr(getattr(cls, h, None), "rpiaas_impl", None) is not None}
    # fcfs implements no hook: it names the control plane's own order
    queue = bool(hooks & set(QUEUE_HOOKS)) or (not hooks and name == "fcfs")
    placement = bool(hooks & set(PLACEMENT_HOOKS))
    where = (*path, "name") if spelt_out else path
    if path == ("policy",) and queue and not placement:
        src.fail(where, f"{name!r} is a queue policy (it orders the queue, it places nothing): "
                        "name it under queue: and give policy: a placement policy such as "
                        "best_fit")
    if path == ("queue",) and placement and not queue:
        src.fail(where, f"{name!r} is a placement policy (it chooses nodes, it orders no queue): "
                        f"name it under policy:, and give queue: a queue policy such as fcfs")


def _check_fits(src: Source, cluster: ClusterSpec, workload: Workload) -> None:
    """A task no node type can hold is an input error, found before the run."""
    types = {n.type.name: n.type for n in cluster.nodes}
    max_cores = max(t.cores for t in types.values())
    max_mem = max(t.mem_mb for t in types.values())
    if isinstance(workload, Generator):
        # the fields are drawn independently, so the largest cores and the largest
        # memory come together sooner or later: some node type must hold both
        cores, mem = workload.max_request()
        gp: KeyPath = ("workload", "generator")
        if cores is not None and cores > max_cores:
            src.fail((*gp, "cores"), f"tasks of up to {cores:g} cores fit no node type "
                                     f"(the largest has {max_cores} cores)")
        if mem is not None and mem > max_mem:
            src.fail((*gp, "mem_mb"), f"tasks of up to {mem:g} MB fit no node type "
                                      f"(the largest has {max_mem} MB)")
        if cores is not None and mem is not None and not any(
                t.cores >= cores and t.mem_mb >= mem for t in types.values()):
            src.fail(gp, f"a task of {cores:g} cores and {mem:g} MB (the largest of each) "
                         f"fits no node type")
    elif isinstance(workload, TaskList):
        for t in workload.items:
            if not any(t.cores <= nt.cores and t.mem_mb <= nt.mem_mb for nt in types.values()):
                if isinstance(workload, WfInstance):
                    src.fail(("workload", "wfcommons", "file"),
                             f"task {workload.names.get(t.id, t.id)!r} of {workload.file} ({t.cores} cores, "
                             f"{t.mem_mb} MB) fits no node type")
                i = workload.positions[t.id]
                src.fail(("workload", "tasks", i), f"task {t.id} ({t.cores} cores, {t.mem_mb} MB) "
                                                    "fits no node type")
            able = sum(1 for n in cluster.nodes if t.cores <= n.type.cores and t.mem_mb <= n.type.mem_mb)
            if t.nodes > able:
                i = workload.positions[t.id]
                src.fail(("workload", "tasks", i, "nodes" if not t.procs and not t.parts else "procs"),
                         f"task {t.id} spans {t.nodes} nodes, but only {able} nodes of the cluster "
                         f"could hold one of its parts ({t.cores} cores, {t.mem_mb} MB)")


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """The run's generators, spawned from one seed: workload, policy and shell.

    Separate streams keep the workload identical whatever the policy draws.
    """
    workload, policy, shell = np.random.SeedSequence(seed).spawn(3)
    return {"workload": np.random.default_rng(workload), "policy": np.random.default_rng(policy),
            "shell": np.random.default_rng(shell)}
