"""Small builders shared by the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rpiaas.inputs.source import Source
from rpiaas.model import PROFILES, Node, NodeType
from rpiaas.scenario import Scenario, parse_scenario


def node_type(cores: int = 4, mem_mb: int = 4096, speed: float = 1.0, idle_w: float = 2.0,
              max_w: float = 6.0, off_w: float = 0.5, boot_s: float = 20.0,
              boot_w: float | None = None, name: str = "t") -> NodeType:
    return NodeType(name, cores, mem_mb, speed, idle_w, max_w, off_w, boot_s,
                    idle_w if boot_w is None else boot_w)


def nodes(*types: NodeType) -> tuple[Node, ...]:
    return tuple(Node(i, f"n{i}", "test", t) for i, t in enumerate(types))


def scenario(data: dict[str, Any], file: str = "test.yaml") -> Scenario:
    """A scenario from a dict, as if read from ``file``."""
    return parse_scenario(Source(json.loads(json.dumps(data)), {}, file, base=Path.cwd()))


def cluster(count: int, type_: str | dict[str, Any] = "rpi4b") -> dict[str, Any]:
    if isinstance(type_, dict):
        return {"node_types": {"custom": type_},
                "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": count, "type": "custom"}]}
    assert type_ in PROFILES
    return {"clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": count, "type": type_}]}


def read_tasks(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(run_dir / "tasks.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    with open(run_dir / "events.jsonl") as f:
        return [json.loads(line) for line in f]


def shared_file(*parts: str) -> Path:
    """A file of the project's shared data (``../shared`` beside the checkout).

    ``$RPIAAS_SHARED_DIR`` names it where the checkout is elsewhere (a CI
    clone in a temporary directory); the first place that has the file wins,
    else the first candidate (which tests then skip on, saying where they looked).
    """
    import os

    root = Path(__file__).resolve().parents[1]
    candidates = [Path(os.environ["RPIAAS_SHARED_DIR"])] if os.environ.get("RPIAAS_SHARED_DIR") \
        else []
    candidates += [root.parent / "shared", Path("/work/shared")]
    for base in candidates:
        if (base.joinpath(*parts)).is_file():
            return base.joinpath(*parts)
    return candidates[0].joinpath(*parts)
