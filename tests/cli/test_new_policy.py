"""rpiaas new-policy: the package it writes installs (pip --target), lists, runs, and passes its own tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.policy.template import package_files


def rpiaas(cwd: Path, *args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m rpiaas ARGS`` with ``path`` (an install target) ahead on ``PYTHONPATH``."""
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=_env(path))


def _env(path: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.mark.parametrize(("name", "message"), [
    ("2fast", "got '2fast'"),
    ("Fast", "got 'Fast'"),
    ("my-policy", "got 'my-policy'"),
    ("class", "got 'class'"),  # a Python keyword cannot name a module
    ("best_fit", "policy name 'best_fit' is already taken by builtin; see rpiaas policies"),
])
def test_a_bad_or_taken_name_is_one_line(tmp_path: Path, name: str, message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-policy", name, "--dir", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: NAME: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "p").exists()


def test_an_existing_directory_is_refused_unless_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "notes.txt").write_text("mine\n")
    assert main(["new-policy", "packer", "--dir", str(root)]) == 2
    assert capsys.readouterr().err == (f"error: --dir: {root} already exists; "
                                       "--force writes the package's files over it\n")
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    assert main(["new-policy", "packer", "--dir", str(root), "--force"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote 8 files in {root}/:") and "rpiaas policies packer" in out
    assert (root / "notes.txt").read_text() == "mine\n"  # other files are kept
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(
        ["notes.txt", *package_files("packer")])


def test_the_default_directory_is_named_after_the_distribution(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "new-policy", "power_of_two")
    assert r.returncode == 0, r.stderr
    root = tmp_path / "rpiaas-power-of-two"
    assert "pip install -e './rpiaas-power-of-two[test]'" in r.stdout
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "rpiaas-power-of-two"' in pyproject
    assert '[project.entry-points."rpiaas.policies"]\npower_of_two = "rpiaas_power_of_two:PowerOfTwo"' in pyproject
    policy = (root / "src" / "rpiaas_power_of_two" / "policy.py").read_text()
    assert 'NAME = "power_of_two"' in policy and "class PowerOfTwo(Policy):" in policy


@pytest.mark.slow
def test_the_package_installs_lists_runs_and_passes_its_own_tests(tmp_path: Path) -> None:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("no setuptools here: pip would download it to build the package")
    root = tmp_path / "rpiaas-headroom"
    r = rpiaas(tmp_path, "new-policy", "headroom", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    # installed into a directory of its own, used through PYTHONPATH: this environment stays as it was
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(root), "--disable-pip-version-check", "--no-input"],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout}\n{pip.stderr}"
    assert importlib.util.find_spec("rpiaas_headroom") is None
    # listed, with its kind, parameter and distribution
    listed = rpiaas(tmp_path, "policies", "headroom", "--json", path=target)
    assert listed.returncode == 0, listed.stderr
    one = json.loads(listed.stdout)
    assert (one["origin"], one["version"]) == ("rpiaas-headroom", "0.1.0")
    assert one["kinds"] == ["placement", "queue"] and one["params"] == {"headroom_cores": {"default": 0}}
    assert one["summary"].startswith("Pack each task onto the fullest node with room")
    # its scenario runs by name, and run.json says where the policy came from
    run = rpiaas(root, "run", "scenarios/example.yaml", "--out", str(tmp_path / "run"), "-q", path=target)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["policy"] == "headroom" and record["summary"]["completed"] == 100
    assert record["versions"]["policies"]["headroom"] == {"origin": "rpiaas-headroom", "version": "0.1.0"}
    # its own tests pass against the installed package (src/ is not on the path)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root,
                           capture_output=True, text=True, timeout=300, env=_env(target))
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout


def test_the_docs_show_what_it_prints(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "writing-a-policy.md").read_text()
    shown = doc.split("$ rpiaas new-policy headroom\n", 1)[1].split("$ pip install", 1)[0]
    r = rpiaas(tmp_path, "new-policy", "headroom")
    assert r.returncode == 0, r.stderr
    assert r.stdout == shown
    readme = (tmp_path / "rpiaas-headroom" / "README.md").read_text()
    assert "$ pip install -e '.[test]'\n$ rpiaas policies headroom\n" in readme
