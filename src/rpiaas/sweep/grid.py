"""The grid of a sweep: scenarios x policies x parameter values x seeds, each a :class:`RunSpec`.

:func:`expand` turns the command line (``--policy``, ``--set KEY=V1,V2``,
``--seeds 1-30``) into run specifications in a fixed order, each naming its
own run directory under ``OUT/runs/``; every grid point's scenario is
validated before any run starts.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inputs.source import InputError

__all__ = ["ID_COLUMNS", "RunSpec", "expand", "parse_seeds", "slug", "split_values"]

ID_COLUMNS = ("run", "scenario", "policy", "seed")


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a scenario file, a policy, ``--set`` overrides and a seed."""

    scenario: str  # absolute path, so that workers elsewhere find it on a shared filesystem
    policy: str | None
    seed: int | None  # None: the scenario's own
    overrides: tuple[tuple[str, str], ...] = ()  # (key, value as written), the swept ones
    fixed: tuple[tuple[str, str], ...] = ()  # single-valued --set pairs
    out: str = ""  # the run directory
    name: str = ""
    scenario_name: str = ""
    event_log: bool = True
    skip_bad_lines: bool = False

    def load(self) -> Any:
        from ..scenario import load_scenario, parse_overrides

        pairs = [f"{k}={v}" for k, v in (*self.fixed, *self.overrides)]
        overrides = parse_overrides(pairs)
        if not self.event_log:
            overrides.append(("event_log", False))
        if self.skip_bad_lines and _has_trace(self.scenario):
            overrides.append(("workload.trace.skip_bad_lines", True))
        return load_scenario(self.scenario, overrides, seed=self.seed, policy=self.policy)


def _has_trace(path: str) -> bool:
    from ..inputs.source import load_file

    data = load_file(path).data
    return isinstance(data, dict) and isinstance(data.get("workload"), dict) and "trace" in data["workload"]


def parse_seeds(text: str) -> list[int]:
    """``"1-30"``, ``"1,2,5-8"`` or ``"7"`` to a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise InputError(f"expected seeds such as 1-30 or 1,2,5-8, got {text!r}", "--seeds") from None
        if a < 0 or b < a:
            raise InputError(f"expected a range low-high with 0 <= low <= high, got {part.strip()!r}",
                             "--seeds")
        seeds.extend(range(a, b + 1))
    if len(set(seeds)) != len(seeds):
        raise InputError(f"a seed appears twice in {text!r}", "--seeds")
    return seeds


def split_values(text: str) -> list[str]:
    """``"0.5,1,{dist: uniform, low: 1, high: 4}"``: split on commas outside brackets and quotes."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def slug(text: str) -> str:
    """``text`` as a file name: runs of other characters than ``A-Za-z0-9._=+-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_") or "_"


def _param_slug(overrides: Sequence[tuple[str, str]]) -> str:
    if not overrides:
        return ""
    full = ",".join(f"{k}={v}" for k, v in overrides)
    digest = hashlib.sha1(full.encode()).hexdigest()
    short = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides]
    name = "-".join(slug(p) for p in short)
    if len(name) > 60 or len({k.rsplit(".", 1)[-1] for k, _ in overrides}) < len(overrides):
        return "p" + digest[:10]  # long or ambiguous: a stable hash
    if name != "-".join(short):
        name += "-" + digest[:6]  # characters were replaced: two values must not meet
    return name


def expand(scenarios: Sequence[str | Path], policies: Sequence[str], seeds: Sequence[int] | None,
           sets: Sequence[str], out: str | Path, event_log: bool = True,
           skip_bad_lines: bool = False, notes: list[str] | None = None) -> list[RunSpec]:
    """The grid, in a fixed order; each point's scenario is validated once (an InputError if bad).

    ``sets`` are ``KEY=V1,V2,...`` strings: a key with one value applies to
    every run, a key with several is an axis of the grid.  No ``policies``:
    each scenario's own; no ``seeds``: each scenario's own seed.  ``notes``
    collects what trace scenarios skipped.
    """
    fixed: list[tuple[str, str]] = []
    axes: list[list[tuple[str, str]]] = []
    for item in sets:
        if "=" not in item:
            raise InputError(f"expected key.path=value[,value...], got {item!r}", "--set")
        key, _, text = item.partition("=")
        values = split_values(text)
        if len(values) == 1:
            fixed.append((key.strip(), values[0]))
        else:
            axes.append([(key.strip(), v) for v in values])
    runs_dir = Path(out).resolve() / "runs"
    specs: list[RunSpec] = []
    names: dict[str, RunSpec] = {}
    for file in scenarios:
        path = str(Path(file).resolve())
        for policy in ([*policies] if policies else [None]):
            for combo in itertools.product(*axes):
                probe = RunSpec(path, policy, None, tuple(combo), tuple(fixed),
                                event_log=event_log, skip_bad_lines=skip_bad_lines)
                sc = probe.load()
                report = getattr(sc.workload, "report", None)
                if notes is not None and report is not None:
                    note = f"{sc.name}: trace {sc.workload.options.path.name}: {report.describe()}"
                    if note not in notes:
                        notes.append(note)
                for seed in (list(seeds) if seeds is not None else [sc.seed]):
                    parts = [sc.name, sc.policy.name, _param_slug(combo), f"s{seed}"]
                    name = "-".join(p for p in parts if p)
                    spec = RunSpec(path, policy, seed, tuple(combo), tuple(fixed), str(runs_dir / name),
                                   name, sc.name, event_log, skip_bad_lines)
                    if name in names:
                        raise InputError(f"two runs of the grid would share the directory {name} "
                                         "(two scenario files with the same name?)", str(file))
                    names[name] = spec
                    specs.append(spec)
    return specs
