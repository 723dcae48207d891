"""rpiaas policies, run as a real process: every policy listed with its origin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rpiaas.policy.plugins import available_policies


def rpiaas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_policies_lists_every_policy(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "policies")
    assert r.returncode == 0 and r.stderr == ""
    head, *lines = r.stdout.splitlines()
    assert head.split()[:3] == ["name", "kind", "source"]
    listed = {line.split()[0]: line for line in lines}
    assert set(available_policies()) <= set(listed)
    assert "placement, power" in listed["consolidate"] and "idle_timeout_s=300.0 min_on=1" in listed["consolidate"]
    assert " queue " in listed["fcfs"] and " builtin " in listed["best_fit"]


def test_policies_as_data(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "policies", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["consolidate"]["kinds"] == ["placement", "power"]
    assert rows["consolidate"]["params"] == {"idle_timeout_s": {"default": 300.0}, "min_on": {"default": 1}}
    assert rows["easy_backfill"]["kinds"] == ["queue"] and rows["best_fit"]["origin"] == "builtin"
    one = rpiaas(tmp_path, "policies", "sjf", "--json")
    assert json.loads(one.stdout) == rows["sjf"]
    text = rpiaas(tmp_path, "policies", "consolidate").stdout
    assert "kind:   placement, power" in text and "param:  min_on = 1" in text


def test_an_unknown_policy_name_gets_a_suggestion(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "policies", "consolidte")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "error: unknown policy 'consolidte' (did you mean 'consolidate'?) (see rpiaas policies)\n"
