"""Generated workloads: an arrival process and a distribution for each task field.

Each field of a generator draws from its own stream, spawned from the run's
workload stream, in chunks of a fixed size.  So the tasks of a seed do not
depend on ``count`` (a longer run extends a shorter one) and changing one
field's distribution leaves the other fields' draws as they were (common
random numbers when comparing scenario variants).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..inputs.source import KeyPath, Source, describe
from ..model import Task
from .base import IMAGELESS_KINDS, Workload

__all__ = [
    "CHUNK",
    "DISTRIBUTIONS",
    "GENERATOR_KEYS",
    "Distribution",
    "Generator",
    "parse_distribution",
    "parse_generator",
]

CHUNK = 4096  # draws per field per refill; fixed, so a seed's tasks do not depend on count
INT_CAP = float(2**53)  # integer fields (cores, mem_mb) never exceed this
FIELDS = ("interarrival_s", "cores", "mem_mb", "work_core_s", "walltime_s")
# mem_mb values below this are shared ints, one object per value (:func:`shared_ints`): a task
# waiting in the queue then holds no int of its own for its memory (32 bytes a task)
SHARED_INTS = 1 << 16

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "normal": ("mean", "sd"),
    "lognormal": ("mu", "sigma"),
    "choice": ("values", "weights"),
}


@dataclass(frozen=True)
class Distribution:
    """A distribution of one task field.  Integer fields round to the nearest integer.

    ``min``/``max`` clip the draws; ``integer`` makes ``uniform`` draw
    integers from ``low`` to ``high`` inclusive.
    """

    dist: str
    params: dict[str, Any]
    integer: bool = False
    min: float | None = None
    max: float | None = None

    def draw(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        p = self.params
        d = self.dist
        if d == "constant":
            x = np.full(n, float(p["value"]))
        elif d == "uniform":
            if self.integer:
                x = rng.integers(int(p["low"]), int(p["high"]) + 1, size=n).astype(np.float64)
            else:
                x = rng.uniform(p["low"], p["high"], size=n)
        elif d == "exponential":
            x = rng.exponential(p["mean"], size=n)
        elif d == "normal":
            x = rng.normal(p["mean"], p["sd"], size=n)
        elif d == "lognormal":
            x = rng.lognormal(p["mu"], p["sigma"], size=n)
        elif d == "choice":
            values = np.asarray(p["values"], dtype=np.float64)
            weights = p.get("weights")
            probs = None if weights is None else np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
            x = values[rng.choice(len(values), size=n, p=probs)]
        else:  # pragma: no cover - validated on parse
            raise ValueError(d)
        if self.integer:
            # round half up, and stay far from int64 overflow whatever the parameters
            x = np.minimum(np.floor(x + 0.5), INT_CAP)
        if self.min is not None or self.max is not None:
            x = np.clip(x, self.min, self.max)
        return x

    def upper_bound(self) -> float | None:
        """The largest value it can draw, or ``None`` when unbounded."""
        p = self.params
        bound: float | None = {
            "constant": lambda: float(p["value"]),
            "uniform": lambda: float(p["high"]),
            "choice": lambda: float(max(v for i, v in enumerate(p["values"])
                                        if not p.get("weights") or p["weights"][i] > 0)),
        }.get(self.dist, lambda: None)()
        if self.max is not None:
            bound = self.max if bound is None else min(bound, self.max)
        if bound is not None and self.min is not None:
            bound = max(bound, self.min)  # clipping lifts everything below min to min
        if bound is not None and self.integer:
            bound = float(np.floor(bound + 0.5))
        return bound


@dataclass(frozen=True)
class Generator(Workload):
    """Tasks drawn from distributions; arrivals a renewal process."""

    count: int | None
    interarrival_s: Distribution
    cores: Distribution
    mem_mb: Distribution
    work_core_s: Distribution
    walltime_s: Distribution | None = None
    start_s: float = 0.0
    kind: str = "cpu"
    tenant: str = ""
    priority: int = 0

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        """The tasks, ids from 1; the first arrives one interarrival time after ``start_s``."""
        streams = [np.random.default_rng(int(s)) for s in rng.integers(0, 2**63, size=len(FIELDS))]
        r_gap, r_cores, r_mem, r_work, r_wall = streams
        t = self.start_s
        limit = self.count
        tid = 0
        kind, tenant, prio = self.kind, self.tenant, self.priority
        table = np.empty(0, dtype=object)
        while limit is None or tid < limit:
            gaps = self.interarrival_s.draw(r_gap, CHUNK)
            cores = self.cores.draw(r_cores, CHUNK).astype(np.int64).tolist()
            mem, table = shared_ints(self.mem_mb.draw(r_mem, CHUNK).astype(np.int64), table)
            work = self.work_core_s.draw(r_work, CHUNK).tolist()
            wall = self.walltime_s.draw(r_wall, CHUNK).tolist() if self.walltime_s is not None else None
            arrivals = (t + np.cumsum(gaps)).tolist()
            t = arrivals[-1]
            n = CHUNK if limit is None else min(CHUNK, limit - tid)
            for i in range(n):
                tid += 1
                yield Task(tid, arrivals[i], cores[i], mem[i], work[i], kind, None, (), tenant, prio, (),
                           wall[i] if wall is not None else None)

    def max_request(self) -> tuple[float | None, float | None]:
        return self.cores.upper_bound(), self.mem_mb.upper_bound()


def shared_ints(values: npt.NDArray[np.int64], table: npt.NDArray[Any]) -> tuple[list[int], npt.NDArray[Any]]:
    """``values.tolist()``, each value below :data:`SHARED_INTS` the one int object of
    ``table`` (an object array, ``table[i]`` is ``i``), which grows to the largest value
    as needed and is returned with the list.  Values out of its range come as they are.

    Taking the objects from the table is no slower than making new ones (numpy copies the
    pointers), and a million tasks of a few thousand sizes hold a few thousand ints.
    """
    if not len(values):
        return [], table
    top = int(values.max())
    if int(values.min()) < 0 or top >= SHARED_INTS:
        return values.tolist(), table
    if top >= len(table):
        grown = np.empty(top + 1, dtype=object)
        grown[:len(table)] = table
        grown[len(table):] = range(len(table), top + 1)
        table = grown
    return table[values].tolist(), table


# ---------------------------------------------------------------- parsing
GENERATOR_KEYS = ("count", "arrival", "cores", "mem_mb", "work_core_s", "walltime_s",
                  "kind", "tenant", "priority", "start_s")


def parse_distribution(src: Source, path: KeyPath, data: Any, integer: bool,
                       positive: bool) -> Distribution:
    """A distribution: a bare number (constant) or ``{dist: NAME, ...params, min, max}``."""
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if integer:
            value: float = src.integer(path, data, minimum=1)
        else:
            value = src.number(path, data, positive=positive, nonnegative=not positive)
        return Distribution("constant", {"value": value}, integer)
    if not isinstance(data, dict) or "dist" not in data:
        got = "" if isinstance(data, dict) else f", got {describe(data)}"
        src.fail(path, f"expected a number or a mapping with dist: one of "
                       f"{', '.join(DISTRIBUTIONS)}{got}")
    m = data
    name = src.choice((*path, "dist"), m["dist"], tuple(DISTRIBUTIONS))
    src.mapping(path, m, ("dist", *DISTRIBUTIONS[name], "min", "max"))
    rules = {"mean": "pos" if name == "exponential" else "num", "sd": "pos", "sigma": "pos",
             "mu": "num", "low": "nonneg" if positive else "num",
             "high": "nonneg" if positive else "num", "value": "pos" if positive else "nonneg"}
    params: dict[str, Any] = {}
    for key in DISTRIBUTIONS[name]:
        kp = (*path, key)
        if key == "weights":
            if key in m:
                w = src.sequence(kp, m[key])
                params[key] = [src.number((*kp, i), v, nonnegative=True) for i, v in enumerate(w)]
            continue
        if key not in m:
            src.fail(path, f"missing key {key!r} for dist {name}")
        if key == "values":
            vals = src.sequence(kp, m[key])
            if not vals:
                src.fail(kp, "expected at least one value")
            if integer:
                params[key] = [src.integer((*kp, i), v, minimum=1) for i, v in enumerate(vals)]
            else:
                params[key] = [src.number((*kp, i), v, positive=positive, nonnegative=True)
                               for i, v in enumerate(vals)]
            continue
        rule = rules[key]
        if integer and key in ("value", "low", "high"):
            params[key] = src.integer(kp, m[key], minimum=1)
            continue
        params[key] = src.number(kp, m[key], positive=rule == "pos", nonnegative=rule == "nonneg")
    if name == "choice" and "weights" in params:
        if len(params["weights"]) != len(params["values"]):
            src.fail((*path, "weights"), f"expected {len(params['values'])} weights, one per value")
        if sum(params["weights"]) <= 0:
            src.fail((*path, "weights"), "weights must not all be zero")
    if name == "uniform" and params["high"] < params["low"]:
        src.fail((*path, "high"), f"below low ({params['high']:g} < {params['low']:g})")
    lo = hi = None
    for key in ("min", "max"):
        if key in m:
            kp = (*path, key)
            bound = (float(src.integer(kp, m[key], minimum=1)) if integer
                     else src.number(kp, m[key], positive=positive))
            lo, hi = (bound, hi) if key == "min" else (lo, bound)
    if positive and lo is None and name in ("normal", "uniform"):
        lo = 1.0 if integer else 0.0
    if integer and lo is None:
        lo = 1.0
    if lo is not None and hi is not None and hi < lo:
        src.fail((*path, "max"), f"below min ({hi:g} < {lo:g})")
    return Distribution(name, params, integer, lo, hi)


def parse_generator(src: Source, path: KeyPath, data: Any) -> Generator:
    g = src.mapping(path, data, GENERATOR_KEYS, required=("arrival", "cores", "mem_mb", "work_core_s"))
    count = src.integer((*path, "count"), g["count"], minimum=1) if g.get("count") is not None else None
    ap = (*path, "arrival")
    a = src.mapping(ap, g["arrival"], ("rate_per_s", "interarrival_s"))
    if ("rate_per_s" in a) == ("interarrival_s" in a):
        src.fail(ap, "give exactly one of rate_per_s (Poisson arrivals) or interarrival_s (a distribution)")
    if "rate_per_s" in a:
        rate = src.number((*ap, "rate_per_s"), a["rate_per_s"], positive=True)
        inter = Distribution("exponential", {"mean": 1.0 / rate})
    else:
        inter = parse_distribution(src, (*ap, "interarrival_s"), a["interarrival_s"], False, False)
        if inter.dist == "constant" and float(inter.params["value"]) < 0:
            src.fail((*ap, "interarrival_s"), "expected a non-negative number")
        if inter.min is None or inter.min < 0:
            inter = Distribution(inter.dist, inter.params, False, 0.0, inter.max)
        longest = inter.upper_bound()
        if count is None and longest is not None and longest <= 0:
            src.fail((*ap, "interarrival_s"), "an endless generator needs interarrival times "
                                              "above zero (else time never advances)")
    return Generator(
        count=count,
        interarrival_s=inter,
        cores=parse_distribution(src, (*path, "cores"), g["cores"], True, True),
        mem_mb=parse_distribution(src, (*path, "mem_mb"), g["mem_mb"], True, True),
        work_core_s=parse_distribution(src, (*path, "work_core_s"), g["work_core_s"], False, True),
        walltime_s=(parse_distribution(src, (*path, "walltime_s"), g["walltime_s"], False, True)
                    if "walltime_s" in g else None),
        start_s=src.number((*path, "start_s"), g.get("start_s", 0.0), nonnegative=True),
        kind=src.choice((*path, "kind"), g.get("kind", "cpu"), IMAGELESS_KINDS),
        tenant=src.string((*path, "tenant"), g.get("tenant", "")),
        priority=src.integer((*path, "priority"), g.get("priority", 0)),
    )
