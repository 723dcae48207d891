"""The run directories of every scenario stay byte-identical across refactors.

``tests/data/golden_runs.json`` holds the SHA-256 of ``tasks.csv``, ``parts.csv``,
``nodes.csv``, ``events.jsonl`` and ``decisions.jsonl`` of each scenario in
``scenarios/`` (run with ``decision_trace: true``), and of its ``run.json``
without the version fields.  A change that alters what a run writes must say
so by regenerating the file on purpose:

    .venv/bin/python tests/test_golden_runs.py --update
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "golden_runs.json"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
FILES = ("tasks.csv", "parts.csv", "nodes.csv", "events.jsonl", "decisions.jsonl")


def fingerprint(scenario_path: Path, out: Path) -> dict[str, str]:
    """Run ``scenario_path`` in simulation into ``out``; the digests of what it wrote."""
    from rpiaas.scenario import load_scenario
    from rpiaas.sim import simulate

    scenario = load_scenario(scenario_path, overrides=[("decision_trace", True)])
    simulate(scenario, out)
    digests = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in FILES}
    run: dict[str, Any] = json.loads((out / "run.json").read_text())
    run.pop("versions", None)
    # where the checkout is is no part of the run
    run["scenario_file"] = str(Path(run["scenario_file"]).resolve().relative_to(ROOT))
    digests["run.json"] = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return digests


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_run_directory_is_unchanged(path: Path, tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert path.stem in golden, f"{path.name} has no golden digests: run {__file__} --update"
    assert fingerprint(path, tmp_path / "run") == golden[path.stem]
    from rpiaas.scenario import load_scenario

    from .helpers import check_summary  # the summary says what the run's own files say

    check_summary(tmp_path / "run", {n.type.name: n.type.cores for n in load_scenario(path).cluster.nodes})


def test_every_scenario_has_golden_digests() -> None:
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(p.stem for p in SCENARIOS)  # ("a-b" after "a", but "a-b.yaml" first)


if __name__ == "__main__":  # pragma: no cover - regenerates the golden file
    import tempfile

    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {sys.argv[0]} --update")
    with tempfile.TemporaryDirectory() as tmp:
        table = {p.stem: fingerprint(p, Path(tmp) / p.stem) for p in SCENARIOS}
    GOLDEN.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(table)} scenarios)")
