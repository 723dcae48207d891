"""How rpiaas.cli.main fails: a policy that raises is one located line (exit 1), SIGTERM and
Ctrl-C leave no run directory (143, 130), a bad argument is one line, not the usage (2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.rundir.writer import RunWriter
from rpiaas.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
SMALL = """\
name: small
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 4, type: rpi4b}]}
workload:
  generator: {count: 50, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: best_fit
"""
POLICIES = '''
from rpiaas import Policy, hookimpl

class Crashy(Policy):
    """Raises on the tenth task."""
    NAME = "crashy"

    @hookimpl
    def rpiaas_place(self, task, view):
        if task.id == 10:
            return self.lookup(task)
        return int(view.fits(task).argmax())

    def lookup(self, task):
        return {}["node of task %d" % task.id]

class Far(Policy):
    """Answers a node the cluster does not have."""
    NAME = "far"

    @hookimpl
    def rpiaas_place(self, task, view):
        return 99 if task.id == 3 else int(view.fits(task).argmax())
'''


def rpiaas(cwd: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def plugin_env(tmp_path: Path, entry_points: dict[str, str], code: str = POLICIES) -> dict[str, str]:
    """A module and an installed-looking distribution on PYTHONPATH for the subprocess."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lab_policies.py").write_text(textwrap.dedent(code))
    info = lib / "lab_policies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-policies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[rpiaas.policies]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return {"PYTHONPATH": f"{lib}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# ---------------------------------------------------------------- a policy that raises
def test_a_policy_that_raises_is_one_located_line(tmp_path: Path) -> None:
    env = plugin_env(tmp_path, {"crashy": "lab_policies:Crashy"})
    (tmp_path / "s.yaml").write_text(SMALL.replace("policy: best_fit", "policy: crashy"))
    r = rpiaas(tmp_path, "run", "s.yaml", env=env)
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(
        "error: policy 'crashy' raised KeyError: 'node of task 10' in rpiaas_place "
        "(lab_policies.py:15) for task 10 at simulated time "), r.stderr
    assert r.stderr.endswith(" s (--debug shows the traceback)\n")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    # --debug (before or after the command) adds the policy's own traceback
    for args in (("--debug", "run", "s.yaml"), ("run", "s.yaml", "--debug")):
        r = rpiaas(tmp_path, *args, env=env)
        assert r.returncode == 1 and "Traceback" in r.stderr and 'lab_policies.py", line 15' in r.stderr
        assert r.stderr.splitlines()[-1].startswith("error: policy 'crashy' raised KeyError")


def test_a_node_index_out_of_range_is_said_as_such(tmp_path: Path) -> None:
    env = plugin_env(tmp_path, {"far": "lab_policies:Far"})
    (tmp_path / "s.yaml").write_text(SMALL.replace("policy: best_fit", "policy: far"))
    r = rpiaas(tmp_path, "run", "s.yaml", env=env)
    assert r.returncode == 1
    assert r.stderr.startswith("error: policy 'far': rpiaas_place put task 3 on node 99, out of range: "
                               "the cluster has nodes 0 to 3 (at simulated time "), r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.endswith(" (--debug shows the traceback)\n")
    # --debug shows where the answer was refused: the hint does what it says
    r = rpiaas(tmp_path, "run", "s.yaml", "--debug", env=env)
    assert r.returncode == 1 and r.stderr.startswith("Traceback"), r.stderr
    assert r.stderr.splitlines()[-1].startswith("error: policy 'far': rpiaas_place put task 3 on node 99")


# ---------------------------------------------------------------- SIGTERM and debris
def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    # about 8 million rows of nodes.csv: long enough to be killed in the middle
    (tmp_path / "s.yaml").write_text(SMALL.replace("count: 4", "count: 20").replace(
        "name: small", "name: small\nsample_interval_s: 0.01\nhorizon_s: 4000"))
    proc = subprocess.Popen([sys.executable, "-m", "rpiaas", "run", "-q", "s.yaml", "--out", "runs/r"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "runs" / f".r.partial-{proc.pid}"
    deadline = time.monotonic() + 60
    while not (partial / "nodes.csv").exists() or (partial / "nodes.csv").stat().st_size < 1_000_000:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err == "terminated; no run directory written\n", err
    assert list((tmp_path / "runs").iterdir()) == []


def test_partial_directories_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs = tmp_path / "runs"
    stale = runs / f".old.partial-{dead.pid}"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "nodes.csv").write_text("x\n")
    alive = runs / f".busy.partial-{os.getppid()}"  # a process that is running
    alive.mkdir()
    other = runs / ".notes.partial-x"  # not ours: left alone
    other.mkdir()
    writer = RunWriter(runs / "new")
    writer.abort()
    assert sorted(p.name for p in runs.iterdir()) == sorted([alive.name, other.name])


# ---------------------------------------------------------------- arguments and --set
def test_a_bad_argument_is_one_line_not_the_usage(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "run", "--seed", "abc", str(QUICKSTART))
    assert r.returncode == 2
    assert r.stderr == ("error: rpiaas run: argument --seed: invalid int value: 'abc' "
                        "(see rpiaas run --help)\n")
    r = rpiaas(tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "COMMAND" in r.stderr


def test_a_set_value_that_is_not_yaml_says_how_it_was_read(tmp_path: Path) -> None:
    r = rpiaas(tmp_path, "validate", str(QUICKSTART), "--set", "description=[unclosed")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("note: --set description: not valid YAML; read as the string '[unclosed'\n")


def test_a_queue_policy_is_no_placement_policy_and_the_reverse(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    with pytest.raises(InputError, match=r"^--set: policy: 'sjf' is a queue policy"):
        load_scenario(f, ["policy=sjf"])
    with pytest.raises(InputError, match=r"^--set: policy: 'fcfs' is a queue policy"):
        load_scenario(f, ["policy=fcfs"])
    with pytest.raises(InputError, match=rf"^{f}:6: queue: 'best_fit' is a placement policy"):
        f.write_text(SMALL + "queue: best_fit\n")
        load_scenario(f)
    f.write_text(SMALL + "queue: {name: worst_fit}\n")
    with pytest.raises(InputError, match=rf"^{f}:6: queue.name: 'worst_fit' is a placement policy"):
        load_scenario(f)
    f.write_text(SMALL + "queue: easy_backfill\n")
    assert load_scenario(f).queue.name == "easy_backfill"  # type: ignore[union-attr]


def test_a_broken_entry_point_is_warned_about_once(tmp_path: Path) -> None:
    env = plugin_env(tmp_path, {"broken": "no_such_module_anywhere:Policy", "far": "lab_policies:Far"})
    # an installed policy and a built-in queue: the entry points are loaded for the one, not the other
    (tmp_path / "s.yaml").write_text(SMALL.replace("policy: best_fit", "policy: far") + "queue: fcfs\n")
    r = rpiaas(tmp_path, "validate", "s.yaml", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("warning: policy entry point 'broken' (no_such_module_anywhere:Policy) failed "
                        "to load: No module named 'no_such_module_anywhere' (ignored: the scenario "
                        "does not use it)\n")
    # built-ins alone: found without loading any installed package, so the broken one is not met
    (tmp_path / "s.yaml").write_text(SMALL + "queue: fcfs\n")
    r = rpiaas(tmp_path, "validate", "s.yaml", env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_every_command_has_its_module_and_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    from rpiaas.cli import COMMANDS, main

    names = [m.__name__.rsplit(".", 1)[1] for m in COMMANDS]
    assert names == ["run", "validate", "traces", "policies", "new_policy", "sweep", "master", "netboot",
                     "testbed", "registry", "image", "compare", "gantt", "calibrate"]
    for name in (n.replace("_", "-") for n in names):  # new_policy is the command new-policy
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0 and capsys.readouterr().out.startswith(f"usage: rpiaas {name} ")


def test_python_m_rpiaas_is_the_command(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "rpiaas", "--version"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("rpiaas ")
