"""A folder named ``rpiaas`` in the working directory never shadows the installed package.

With the package at the repository's root (a flat layout), ``import rpiaas`` run from the folder
above a clone named ``rpiaas`` (where a notebook server is often started), or from any folder
holding an empty ``rpiaas``, found that folder first, as a namespace package, and failed with
``module 'rpiaas' has no attribute 'run'``.  The package now lives under ``src/``: only the
install puts it on the path, ahead of any such folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _probe(cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import rpiaas, sys; rpiaas.run; print(rpiaas.__file__)"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("folder", ["empty", "clone"])
def test_import_from_a_folder_holding_one_named_rpiaas(tmp_path: Path, folder: str) -> None:
    shadow = tmp_path / "rpiaas"
    if folder == "clone":  # what a clone's top level holds, without its .git
        shadow.mkdir()
        for name in ("pyproject.toml", "README.md", "docs", "scenarios"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, shadow / name)
        shutil.copytree(ROOT / "src", shadow / "src", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shadow.mkdir()
    done = _probe(tmp_path)
    assert done.returncode == 0, done.stderr
    found = Path(done.stdout.strip())
    assert found.name == "__init__.py" and found.parent.name == "rpiaas"
    assert shadow not in found.parents, f"the folder {shadow} shadowed the package"


def test_python_dash_m_from_a_folder_holding_one_named_rpiaas(tmp_path: Path) -> None:
    (tmp_path / "rpiaas").mkdir()
    done = subprocess.run([sys.executable, "-m", "rpiaas", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rpiaas ")


def test_the_package_is_not_at_the_repository_root() -> None:
    assert not (ROOT / "rpiaas").exists(), "the package belongs under src/ (see docs/architecture.md)"
    assert (ROOT / "src" / "rpiaas" / "__init__.py").is_file()
