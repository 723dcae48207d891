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


def check_summary(run_dir: Path, cores: dict[str, int]) -> dict[str, Any]:
    """Assert that ``run.json``'s summary says what the run's own files say: its counts of
    faults, retries, kills and power-ons are the event log's, and its ``by_node_type`` figures
    are those of ``tasks.csv``'s rows (by the type of the node each names) and of ``run.json``'s
    ``nodes`` (``cores``: each node type's).  Returns the summary."""
    import math

    record = json.loads((run_dir / "run.json").read_text())
    summary: dict[str, Any] = record["summary"]
    events = read_events(run_dir)
    rows = read_tasks(run_dir)

    def n(**match: Any) -> int:
        return sum(1 for e in events if all(e.get(k) == v for k, v in match.items()) and not e.get("ignored")
                   and not e.get("dropped"))

    kills = [e for e in events if e.get("act") == "kill" and not e.get("dropped")]
    assert summary["faults_node_down"] == n(ev="node_down")
    assert summary["faults_node_up"] == n(ev="node_up")
    assert summary["retries"] == n(act="retry")
    assert summary["kills_walltime"] == sum(1 for e in kills if e.get("reason") == "walltime")
    assert summary["kills_policy"] == sum(1 for e in kills if "reason" not in e)
    assert summary["power_ons"] == n(act="power_on")
    assert summary["kills_walltime"] + summary["kills_policy"] == summary["killed"] == sum(
        1 for r in rows if r["state"] == "killed")
    # every attempt lost (to its node, or failing itself) is retried or ends its task failed
    failed = sum(1 for r in rows if r["state"] == "failed")
    assert summary["retries"] + failed == summary["kills_node_lost"] + n(ev="fail") + n(act="fail")
    assert summary["kills_node_lost"] >= sum(1 for r in rows if r["reason"].startswith("node lost"))

    types = {node["node"]: node["type"] for node in record["nodes"]}
    by_type = summary["by_node_type"]
    assert list(by_type) == list(dict.fromkeys(types.values()))
    for name, fig in by_type.items():
        mine = [r for r in rows if r["node"] and types[r["node"]] == name]
        started = [float(r["wait_s"]) for r in mine if r["wait_s"]]
        done = [float(r["response_s"]) for r in mine if r["state"] == "completed"]
        nodes = [node for node in record["nodes"] if node["type"] == name]
        assert (fig["nodes"], fig["tasks"], fig["completed"]) == (len(nodes), len(mine), len(done))
        assert fig["mean_wait_s"] == (_approx(math.fsum(started) / len(started)) if started else None)
        assert fig["mean_response_s"] == (_approx(math.fsum(done) / len(done)) if done else None)
        assert fig["energy_j"] == _approx(math.fsum(node["energy_j"] for node in nodes))
        assert fig["energy_source"] in {node["energy_source"] for node in nodes} | {"mixed"}
        capacity = cores[name] * len(nodes) * summary["duration_s"]
        assert fig["mean_utilization"] == _approx(math.fsum(node["busy_core_s"] for node in nodes) / capacity)
    assert sum(f["tasks"] for f in by_type.values()) == sum(1 for r in rows if r["node"])
    assert math.fsum(f["energy_j"] for f in by_type.values()) == _approx(summary["energy_j"])
    return summary


def _approx(x: float) -> Any:
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-9)
