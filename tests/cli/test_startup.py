"""What the ``rpiaas`` command imports: each command what it uses, ``--version`` and ``--help``
almost nothing (``import rpiaas`` imports a public name on first use)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import TINY

# the command as `python -m rpiaas ARGS...` runs it, then the modules it imported, as JSON
PROBE = """\
import json, runpy, sys
sys.argv = ["rpiaas", *sys.argv[1:]]
try:
    runpy.run_module("rpiaas", run_name="__main__")
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def imported(cwd: Path, *args: str) -> tuple[int, set[str]]:
    """The exit code of ``rpiaas ARGS...`` in a fresh interpreter and the modules it imported."""
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    report = json.loads(r.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if m in packages or m.startswith(tuple(p + "." for p in packages))}


def test_version_and_help_import_neither_numpy_nor_the_library(tmp_path: Path) -> None:
    for args in (("--version",), ("--help",), ("run", "--help")):
        code, modules = imported(tmp_path, *args)
        assert code == 0
        assert not under(modules, "numpy", "yaml", "pluggy", "simpy", "rpiaas.core", "rpiaas.policy",
                         "rpiaas.scenario", "rpiaas.sim", "rpiaas.rundir"), args
        assert "importlib.metadata" not in modules, args  # no entry point, no version looked up


def test_a_simulated_run_imports_what_it_uses_only(tmp_path: Path) -> None:
    # (tasks.csv written a column at a time: more than 64 rows at once)
    (tmp_path / "s.yaml").write_text(TINY.replace("count: 20", "count: 400"))
    code, modules = imported(tmp_path, "run", "s.yaml", "--out", "r", "--quiet")
    assert code == 0 and (tmp_path / "r" / "run.json").is_file()
    assert under(modules, "rpiaas.sim", "rpiaas.scenario", "rpiaas.policy.builtin.first_fit")
    # no other command's library (nor what building their parsers reads), no live extra
    assert not under(modules, "rpiaas.testbed", "rpiaas.master", "rpiaas.live", "rpiaas.client",
                     "rpiaas.analysis", "rpiaas.sweep", "rpiaas.netboot", "rpiaas.power", "aiohttp")
    # nor what the run does not need: numpy.ma (np.unique), a median of no boots, a suggestion
    assert not under(modules, "numpy.ma", "statistics", "difflib")
    # a built-in policy is found without loading the installed packages' entry points
    assert json.loads((tmp_path / "r" / "run.json").read_text())["versions"]["policies"]["first_fit"][
        "origin"] == "builtin"
