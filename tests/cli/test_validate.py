"""rpiaas validate, run as a real process: a scenario checked, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def rpiaas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_validate(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "validate", str(QUICKSTART))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{QUICKSTART}: ok — 12 nodes, 2000 tasks, policy best_fit, seed 42"
    assert list(tmp_path.iterdir()) == []  # validating writes nothing
