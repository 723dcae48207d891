"""A plain ``pip install rpiaas`` works: every command runs, or says in one line which extra it needs.

Builds the project's wheel, installs it with ``--no-deps`` into a fresh
virtual environment, and copies in only the distributions it is meant to get
(the core dependencies, then the ``live`` extra) from this test environment:
no network, and nothing else on the path that could hide a missing import.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _closure(names: list[str]) -> list[md.Distribution]:
    """The installed distributions ``names`` and everything they require (extras left out)."""
    out: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        dist = md.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in out:
            continue
        out[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(out.values())


def _copy_in(dists: list[md.Distribution], site: Path) -> None:
    """Put the installed files of ``dists`` (their packages and metadata) into ``site``."""
    for dist in dists:
        base = Path(str(dist.locate_file(""))).resolve()
        for f in dist.files or []:
            src = Path(str(dist.locate_file(f))).resolve()
            if not src.is_file() or base not in src.parents or "__pycache__" in src.parts:
                continue  # scripts in bin/, byte code: not needed
            dest = site / src.relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)


def _requirements(extra: str | None) -> list[str]:
    dist = md.distribution("rpiaas")
    names = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or (extra is not None and req.marker.evaluate({"extra": extra})):
            names.append(req.name)
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src" / "rpiaas", src / "src" / "rpiaas", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    return next(out.glob("rpiaas-*.whl"))


def _make_env(path: Path, wheel: Path, extra: str | None) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    _copy_in(_closure(_requirements(extra)), site)
    return path / "bin" / "rpiaas"


def _run(exe: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_core_install_runs_every_command_or_names_its_extra(tmp_path: Path, wheel: Path) -> None:
    exe = _make_env(tmp_path / "core", wheel, None)
    check = _run(exe.parent / "python", tmp_path, "-c", "import aiohttp")
    assert check.returncode != 0  # the environment really lacks the live extra
    r = _run(exe, tmp_path, "--help")
    assert r.returncode == 0 and "testbed" in r.stdout and r.stderr == "", r.stderr
    r = _run(exe, tmp_path, "run", "-q", str(ROOT / "scenarios" / "quickstart.yaml"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "quickstart-best_fit-s42" / "run.json").is_file()
    run = tmp_path / "runs" / "quickstart-best_fit-s42"
    r = _run(exe, tmp_path, "gantt", str(run), "-o", "g.svg")  # SVG needs no extra
    assert r.returncode == 0 and (tmp_path / "g.svg").read_text().startswith("<svg"), r.stderr
    r = _run(exe, tmp_path, "gantt", str(run), "-o", "g.png")
    assert r.returncode == 2 and r.stderr == ("error: a PNG needs matplotlib (pip install "
                                              "'rpiaas[sweep]'); an .svg needs nothing\n"), r.stderr
    r = _run(exe, tmp_path, "run", "-q", "--format", "parquet", "-o", "p",
             str(ROOT / "scenarios" / "quickstart.yaml"))
    assert r.returncode == 2 and r.stderr == (
        "error: --format: --format parquet needs pyarrow, part of the analysis extra "
        "(pip install 'rpiaas[analysis]')\n"), r.stderr
    r = _run(exe.parent / "python", tmp_path, "-c", f"import rpiaas; rpiaas.load_run({str(run)!r})")
    assert r.returncode == 1 and r.stderr.splitlines()[-1] == (
        "ModuleNotFoundError: rpiaas's DataFrames need pandas, part of the analysis extra "
        "(pip install 'rpiaas[analysis]')"), r.stderr
    for args, command in ((("master", "master.yaml"), "rpiaas master"),
                          (("testbed", "up", "--local", "2"), "rpiaas testbed")):
        r = _run(exe, tmp_path, *args)
        assert r.returncode == 2 and r.stderr == (
            f"error: {command} needs the live extra (pip install 'rpiaas[live]'): "
            "no module 'aiohttp'\n"), r.stderr
    for args in (("validate", str(ROOT / "scenarios" / "quickstart.yaml")), ("policies",),
                 ("netboot", "--help"), ("compare", "--help"), ("sweep", "--help")):
        r = _run(exe, tmp_path, *args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)


def test_live_extra_install_reaches_the_master(tmp_path: Path, wheel: Path) -> None:
    exe = _make_env(tmp_path / "live", wheel, "live")
    r = _run(exe, tmp_path, "testbed", "--help")
    assert r.returncode == 0 and "up" in r.stdout, r.stderr
    r = _run(exe, tmp_path, "master", "nowhere.yaml")  # past the import: the config's own error
    assert r.returncode == 2 and r.stderr.startswith("error: nowhere.yaml: no such file"), r.stderr
