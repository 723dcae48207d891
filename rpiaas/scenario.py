"""Scenario files: parse -> fill defaults -> validate -> build.

A scenario names a cluster, a workload, a policy (and optionally a queue
policy), a seed and a few run settings.  :func:`load_scenario` reads one from
YAML, applies ``--set`` style overrides, and either returns a
:class:`Scenario` or raises :class:`~rpiaas.source.InputError` naming the
file, line and key.  ``docs/scenario.md`` documents every key.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .cluster import parse_cluster
from .model import ClusterSpec, PowerState
from .plugins import UnknownPolicyError, available_policies
from .policy import Policy, PolicyParamError
from .source import InputError, KeyPath, Source, load_file
from .workload import Generator, TaskList, Workload, parse_workload

__all__ = ["PolicySpec", "Scenario", "load_scenario", "parse_scenario"]

TOP_KEYS = ("name", "description", "seed", "horizon_s", "sample_interval_s", "retries",
            "initial_power", "cluster", "workload", "policy", "queue")


@dataclass(frozen=True)
class PolicySpec:
    """A policy by name with its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def create(self, rng: Any = None) -> Policy:
        return available_policies()[self.name].cls.create(dict(self.params), rng)


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

    def policies(self, rng: Any = None) -> list[Policy]:
        """Policy instances in registration order (the main policy last, so asked first)."""
        out = []
        if self.queue is not None:
            out.append(self.queue.create(rng))
        out.append(self.policy.create(rng))
        return out


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=1", ...]`` to ``[("a.b", 1), ...]``; values are read as YAML scalars."""
    out = []
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"expected key.path=value, got {pair!r}", "--set")
        key, _, raw = pair.partition("=")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def load_scenario(path: str | Path, overrides: list[tuple[str, Any]] = (),  # type: ignore[assignment]
                  seed: int | None = None, policy: str | None = None) -> Scenario:
    """Read, override, validate and build a scenario file."""
    src = load_file(path)
    for key, value in overrides:
        src.override(key, value)
    if seed is not None:
        src.override("seed", seed)
    if policy is not None:
        current = src.data.get("policy") if isinstance(src.data, dict) else None
        same = current == policy or (isinstance(current, dict) and current.get("name") == policy)
        if not same:
            src.override("policy", policy)
    return parse_scenario(src)


def parse_scenario(src: Source) -> Scenario:
    root: KeyPath = ()
    if src.data is None:
        src.fail(root, "empty scenario")
    m = src.mapping(root, src.data, TOP_KEYS, required=("cluster", "workload", "policy"))
    name = src.string(("name",), m.get("name", Path(src.file).stem))
    seed = src.integer(("seed",), m.get("seed", 0), minimum=0)
    horizon = src.number(("horizon_s",), m["horizon_s"], positive=True) if m.get("horizon_s") is not None else None
    sample = src.number(("sample_interval_s",), m.get("sample_interval_s", 60.0), positive=True)
    retries = src.integer(("retries",), m.get("retries", 0), minimum=0)
    initial = src.choice(("initial_power",), m.get("initial_power", "on"), ("on", "off"))
    cluster = parse_cluster(src, ("cluster",), m["cluster"])
    workload = parse_workload(src, ("workload",), m["workload"])
    _check_fits(src, cluster, workload)
    policy = _policy(src, ("policy",), m["policy"])
    queue = _policy(src, ("queue",), m["queue"]) if m.get("queue") is not None else None
    if workload.count is None and horizon is None:
        src.fail(("workload",), "an endless generator (no count) needs horizon_s")
    data = copy.deepcopy(m)
    data.update(name=name, seed=seed, horizon_s=horizon, sample_interval_s=sample,
                retries=retries, initial_power=initial,
                policy={"name": policy.name, "params": policy.params},
                queue=None if queue is None else {"name": queue.name, "params": queue.params})
    return Scenario(name, cluster, workload, policy, queue, seed, horizon, sample, retries,
                    PowerState.ON if initial == "on" else PowerState.OFF, data, src.file,
                    src.string(("description",), m.get("description", "")))


def _policy(src: Source, path: KeyPath, data: Any) -> PolicySpec:
    if isinstance(data, str):
        name, params = data, {}
    else:
        m = src.mapping(path, data, ("name", "params"), required=("name",))
        name = src.string((*path, "name"), m["name"])
        params = dict(src.mapping((*path, "params"), m.get("params", {})))
    try:
        policies = available_policies()
    except (ImportError, TypeError, ValueError) as e:
        src.fail(path, str(e))
    if name not in policies:
        err = UnknownPolicyError(name, sorted(policies))
        src.fail((*path, "name") if isinstance(data, dict) else path, str(err))
    cls = policies[name].cls
    try:  # instantiate once now, so a bad parameter fails before the run
        cls.create(dict(params), rng=None)
    except PolicyParamError as e:
        src.fail((*path, "params", e.key) if e.key else (*path, "params"), e.message)
    known = cls.parameters()
    full = {k: p.default for k, p in known.items() if p.default is not inspect.Parameter.empty}
    full.update(params)
    return PolicySpec(name, full)


def _check_fits(src: Source, cluster: ClusterSpec, workload: Workload) -> None:
    """A task no node type can hold is an input error, found before the run."""
    types = {n.type.name: n.type for n in cluster.nodes}
    max_cores = max(t.cores for t in types.values())
    max_mem = max(t.mem_mb for t in types.values())
    if isinstance(workload, Generator):
        cores, mem = workload.max_request()
        gp: KeyPath = ("workload", "generator")
        if cores is not None and cores > max_cores:
            src.fail((*gp, "cores"), f"tasks of up to {cores:g} cores fit no node type "
                                     f"(the largest has {max_cores})")
        if mem is not None and mem > max_mem:
            src.fail((*gp, "mem_mb"), f"tasks of up to {mem:g} MB fit no node type "
                                      f"(the largest has {max_mem})")
        if cores is not None and mem is not None and not any(
                t.cores >= cores and t.mem_mb >= mem for t in types.values()) and \
                workload.cores.dist == "constant" and workload.mem_mb.dist == "constant":
            src.fail(gp, f"a task of {cores:g} cores and {mem:g} MB fits no node type")
    elif isinstance(workload, TaskList):
        for t in workload.items:
            if not any(t.cores <= nt.cores and t.mem_mb <= nt.mem_mb for nt in types.values()):
                i = workload.positions[t.id]
                src.fail(("workload", "tasks", i), f"task {t.id} ({t.cores} cores, {t.mem_mb} MB) "
                                                    "fits no node type")

