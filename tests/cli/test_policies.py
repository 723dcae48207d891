"""rpiaas policies, run as a real process: every policy listed with its origin."""

from __future__ import annotations

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
    listed = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()}
    assert set(available_policies()) <= set(listed)
    assert listed["best_fit"] == "builtin" and listed["consolidate"] == "builtin"
