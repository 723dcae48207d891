"""Tests of rpiaas.policy.plugins: finding policies, the plugin manager and the hooks it calls.

The last part installs the third-party example ``examples/rpiaas-tenant-quota``
into the running environment with pip, as a user would, runs it by name
through the ``rpiaas`` command, and uninstalls it again.
"""

from __future__ import annotations

import csv
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
import yaml

from rpiaas import (
    PROFILES,
    SKIP,
    ControlPlane,
    InputError,
    Node,
    Policy,
    PowerPlan,
    Start,
    Task,
    TaskArrived,
    hookimpl,
    load_scenario,
)
from rpiaas.policy.builtin import BUILTIN_POLICIES
from rpiaas.policy.plugins import (
    ENTRY_POINT_GROUP,
    HookCall,
    UnknownPolicyError,
    available_policies,
    get_plugin_manager,
    get_policy,
)
from rpiaas.rundir.metrics import run_record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rpiaas-tenant-quota"
EXAMPLE_SCENARIO = Path("scenarios") / "three-tenants.yaml"
DIST = "rpiaas-tenant-quota"
RPIAAS = Path(sys.executable).parent / "rpiaas"


def pis(n: int) -> list[Node]:
    return [Node(i, f"node{i}", "lab.test", PROFILES["rpi4b"]) for i in range(n)]


# ---------------------------------------------------------------- finding policies
def test_builtins_are_listed_by_name_with_origin_builtin() -> None:
    found = available_policies()
    for cls in BUILTIN_POLICIES:
        info = found[cls.NAME]
        assert info.cls is cls
        assert info.origin == "builtin"
        assert info.summary and info.summary == cls.summary()
        # the module's NAME constant is the name scenarios use
        assert sys.modules[cls.__module__].NAME == cls.NAME  # type: ignore[attr-defined]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPolicyError) as err:
        get_policy("best-fit")
    names = sorted(cls.NAME for cls in BUILTIN_POLICIES)
    assert all(name in str(err.value) for name in names)
    assert "'best-fit'" in str(err.value)


def _fake_distribution(tmp_path: Path, dist: str, entry_points: dict[str, str], module: str,
                       code: str) -> None:
    """Put a module and an installed-looking distribution with entry points on ``tmp_path``."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
    info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


POLICY_MODULE = """
    from rpiaas import Policy

    class Greedy(Policy):
        '''Take whatever node comes first.'''
        NAME = "greedy_{tag}"

    class Named(Policy):
        '''No NAME: the entry point's name is used.'''

    class Clash(Policy):
        '''Takes a built-in's name.'''
        NAME = "best_fit"

    NOT_A_POLICY = object()
"""


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A directory on ``sys.path`` for fake distributions, and a module name unique to the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"fake_policies_{abs(hash(tmp_path)) % 10**8}"
    yield tmp_path, module
    sys.modules.pop(module, None)


def test_entry_points_are_found_with_their_distribution(plugin_path: tuple[Path, str]) -> None:
    path, module = plugin_path
    _fake_distribution(path, "lab-policies", {"greedy": f"{module}:Greedy", "named": f"{module}:Named"},
                       module, POLICY_MODULE.replace("{tag}", "x"))
    found = available_policies()
    assert found["greedy_x"].origin == "lab-policies"
    assert found["greedy_x"].summary == "Take whatever node comes first."
    assert found["named"].cls.__name__ == "Named"
    # built-ins come first, then installed policies
    names = list(found)
    assert names[: len(BUILTIN_POLICIES)] == [cls.NAME for cls in BUILTIN_POLICIES]


@pytest.mark.parametrize(("target", "error", "words"), [
    ("{module}:NOT_A_POLICY", TypeError, "is not a rpiaas Policy class"),
    ("{module}:Clash", ValueError, "already taken by builtin"),
    ("{module}:Missing", ImportError, "failed to load"),
    ("no_such_module_anywhere:Policy", ImportError, "failed to load"),
])
def test_a_broken_entry_point_fails_loudly(plugin_path: tuple[Path, str], target: str,
                                           error: type[Exception], words: str) -> None:
    path, module = plugin_path
    _fake_distribution(path, "broken-policies", {"broken": target.format(module=module)}, module,
                       POLICY_MODULE.replace("{tag}", "y"))
    with pytest.raises(error, match=words):
        available_policies()
    # one broken package does not hide the others: a scenario naming a built-in still loads
    scenario = path / "s.yaml"
    scenario.write_text(textwrap.dedent("""\
        cluster: {clusters: [{domain: lab.test, prefix: 10.0.1, count: 1, type: rpi4b}]}
        workload: {tasks: [{arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 1}]}
        policy: first_fit
    """))
    assert load_scenario(scenario).policy.name == "first_fit"
    broken: dict[str, str] = {}
    assert "first_fit" in available_policies(broken)
    assert words in broken["broken"]
    # ... and naming the broken one is an input error at the policy key
    scenario.write_text(scenario.read_text().replace("policy: first_fit", "policy: broken"))
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    assert err.value.path == "policy" and err.value.line == 3
    assert words in err.value.message


def test_a_builtin_name_is_the_builtin_without_loading_any_entry_point(plugin_path: tuple[Path, str]) -> None:
    path, module = plugin_path
    # a package that takes a built-in's name (its entry point named as the built-in too), a good one,
    # and one whose module is not there
    _fake_distribution(path, "shadow-policies", {"best_fit": f"{module}:Clash", "greedy": f"{module}:Greedy",
                                                 "gone": "no_such_module_anywhere:Policy"},
                       module, POLICY_MODULE.replace("{tag}", "z"))
    # a built-in's name: the built-in, and nothing installed is imported (the missing module would raise)
    info = get_policy("best_fit")
    assert info.cls is next(c for c in BUILTIN_POLICIES if c.NAME == "best_fit") and info.origin == "builtin"
    assert module not in sys.modules
    # any other name loads the entry points: the good one is found, a broken one raises or is recorded
    with pytest.raises((ImportError, ValueError), match=r"'gone'|already taken"):
        get_policy("greedy_z")
    broken: dict[str, str] = {}
    assert get_policy("greedy_z", broken).origin == "shadow-policies"
    assert "already taken by builtin" in broken["best_fit"] and "failed to load" in broken["gone"]
    # listing every policy still refuses the package that takes a built-in's name
    with pytest.raises((ImportError, ValueError), match=r"'gone'|already taken"):
        available_policies()
    # a scenario naming the built-in runs the built-in, and says nothing of the installed packages
    scenario = path / "s.yaml"
    scenario.write_text(textwrap.dedent("""\
        cluster: {clusters: [{domain: lab.test, prefix: 10.0.1, count: 1, type: rpi4b}]}
        workload: {tasks: [{arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 1}]}
        policy: best_fit
    """))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc = load_scenario(scenario)
    assert sc.policy.cls is info.cls
    assert run_record(sc, "sim", {}, [])["versions"]["policies"] == {
        "best_fit": {"origin": "builtin", "version": info.version}}
    # naming the installed one warns of the broken ones
    scenario.write_text(scenario.read_text().replace("policy: best_fit", "policy: greedy_z"))
    with pytest.warns(RuntimeWarning) as caught:
        greedy = load_scenario(scenario).policy.cls
    assert greedy is not None and greedy.__name__ == "Greedy"
    assert sorted(str(w.message).split(" (")[0] for w in caught) == [
        "policy entry point 'gone'", "policy name 'best_fit' of shadow-policies is already taken by builtin"]


def test_the_policies_command_reports_a_broken_entry_point(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "broken-policies", {"broken": "no_such_module_anywhere:Policy"},
                       "unused_module", "")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run([str(RPIAAS), "policies"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path})
    assert proc.returncode in (1, 2)
    assert proc.stderr.startswith("error: policy entry point 'broken'"), proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the plugin manager
def test_a_misspelt_hook_fails_when_the_manager_is_built() -> None:
    class Typo(Policy):
        NAME = "typo"

        @hookimpl
        def rpiaas_plac(self, task: Task, view: Any) -> int:
            return 0

    with pytest.raises(pluggy.PluginValidationError, match="rpiaas_plac"):
        get_plugin_manager([Typo()])


def test_a_hook_asking_for_an_unknown_argument_fails() -> None:
    class Wrong(Policy):
        NAME = "wrong"

        @hookimpl
        def rpiaas_place(self, task: Task, cluster: Any) -> int:
            return 0

    with pytest.raises(pluggy.PluginValidationError, match="cluster"):
        get_plugin_manager([Wrong()])


def test_a_scenario_naming_a_policy_with_a_misspelt_hook_is_an_input_error(
        plugin_path: tuple[Path, str]) -> None:
    path, module = plugin_path
    _fake_distribution(path, "typo-policies", {"typo": f"{module}:Typo"}, module, """
        from rpiaas import Policy, hookimpl

        class Typo(Policy):
            '''Misspells a hook.'''
            NAME = "typo"

            @hookimpl
            def rpiaas_plac(self, task, view):
                return 0
    """)
    scenario = path / "s.yaml"
    scenario.write_text(textwrap.dedent("""\
        cluster: {clusters: [{domain: lab.test, prefix: 10.0.1, count: 1, type: rpi4b}]}
        workload: {tasks: [{arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 1}]}
        policy: typo
    """))
    # found when the scenario is loaded (so by `rpiaas validate`), not in the middle of a run
    with pytest.raises(InputError, match="rpiaas_plac") as err:
        load_scenario(scenario)
    assert (err.value.path, err.value.line) == ("policy", 3)


class Answer(Policy):
    """Answers every placement hook with fixed values."""

    NAME = "answer"

    def __init__(self, node: int | None, score: float) -> None:
        self.node = node
        self.score = score

    @hookimpl
    def rpiaas_place(self, task: Task) -> int | None:  # fewer arguments than the spec
        return self.node

    @hookimpl
    def rpiaas_score(self, view: Any) -> Any:
        return np.full(len(view), self.score)


def test_later_policies_are_asked_first() -> None:
    pm = get_plugin_manager([Answer(1, 1.0), Answer(2, 2.0), Answer(None, 3.0)])
    place = HookCall(pm, "rpiaas_place")
    assert place.implemented and place.firstresult
    # the last registered says None, so the one before answers
    assert place.first(task=object(), view=None) == 2
    score = HookCall(pm, "rpiaas_score")
    assert not score.firstresult
    view = ControlPlane(pis(2)).view
    assert [float(s[0]) for s in score.all(task=object(), view=view)] == [3.0, 2.0, 1.0]
    assert not HookCall(pm, "rpiaas_power").implemented


class Wrapper(Policy):
    """Doubles every score, as a new-style pluggy wrapper."""

    NAME = "wrapper"

    @hookimpl(wrapper=True)
    def rpiaas_score(self, task: Task, view: Any) -> Iterator[None]:
        scores = yield
        return [s * 2 for s in scores]  # type: ignore[no-any-return]


def test_wrappers_go_through_pluggy() -> None:
    pm = get_plugin_manager([Answer(None, 1.5), Wrapper()])
    score = HookCall(pm, "rpiaas_score")
    view = ControlPlane(pis(2)).view
    assert [float(s[0]) for s in score.all(task=object(), view=view)] == [3.0]
    assert HookCall(pm, "rpiaas_place").first(task=object(), view=view) is None


class Recorder(Policy):
    """Implements every hook and records the calls."""

    NAME = "recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def rpiaas_admit(self, task: Task, view: Any) -> None:
        self.calls.append(f"admit {task.id}")

    @hookimpl
    def rpiaas_queue_order(self, queue: list[Task], view: Any) -> None:
        self.calls.append("queue_order " + " ".join(str(t.id) for t in queue))

    @hookimpl
    def rpiaas_place(self, task: Task, view: Any) -> None:
        self.calls.append(f"place {task.id}")

    @hookimpl
    def rpiaas_filter(self, task: Task, view: Any) -> None:
        self.calls.append(f"filter {task.id}")

    @hookimpl
    def rpiaas_score(self, task: Task, view: Any) -> None:
        self.calls.append(f"score {task.id}")

    @hookimpl
    def rpiaas_blocked(self, task: Task, view: Any, now: float, reservation: Any) -> Any:
        self.calls.append(f"blocked {task.id}")
        return SKIP

    @hookimpl
    def rpiaas_rebalance(self, view: Any, now: float) -> None:
        self.calls.append("rebalance")

    @hookimpl
    def rpiaas_power(self, view: Any, now: float) -> PowerPlan:
        self.calls.append("power")
        return PowerPlan()

    @hookimpl
    def rpiaas_notify(self, event: Any, view: Any) -> None:
        self.calls.append(f"notify {type(event).__name__}")


def test_hooks_are_called_in_the_documented_order() -> None:
    rec = Recorder()
    cp = ControlPlane(pis(2), [rec])
    cp.step(0.0, [TaskArrived(Task(1, 0.0, 4, 64, 1.0)), TaskArrived(Task(2, 0.0, 2, 64, 1.0))])
    assert {t.id: t.node for t in cp.running()} == {1: 0, 2: 1}
    rec.calls.clear()
    # task 3 needs a whole node and waits; task 4 fits next to task 2
    wide, small = Task(3, 1.0, 4, 64, 1.0), Task(4, 1.0, 1, 64, 1.0)
    actions = cp.step(1.0, [TaskArrived(small), TaskArrived(wide)])
    assert [(a.task.id, a.node) for a in actions if isinstance(a, Start)] == [(4, 1)]
    assert rec.calls == [
        # events in id order; admission while applying each, notification after it
        "admit 3", "notify TaskArrived", "admit 4", "notify TaskArrived",
        "queue_order 3 4",
        # no placement answer, so filter + score; task 3 is blocked, SKIP moves on
        "place 3", "filter 3", "score 3", "blocked 3",
        "place 4", "filter 4", "score 4",
        "rebalance", "power",
    ]


# ---------------------------------------------------------------- a third-party package
def _can_build_offline() -> bool:
    """Whether this environment can build a setuptools package without downloading anything."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])
    # before 70.1 setuptools needs the wheel package to build wheels
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
                           "--no-input"], capture_output=True, text=True, timeout=600)


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example package, ``pip install``-ed into this environment for the module's tests.

    It is built from a copy, so the build leaves nothing in the source tree,
    and uninstalled afterwards (unless it was installed before).
    """
    src = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache", "runs"))
    was_installed = _installed()
    # offline when the build tools are here; else pip fetches setuptools for an isolated build
    isolation = ["--no-build-isolation"] if _can_build_offline() else []
    proc = _pip("install", "--no-deps", *isolation, str(src))
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    importlib.invalidate_caches()
    try:
        yield src
    finally:
        if not was_installed:
            proc = _pip("uninstall", "--yes", DIST)
            assert proc.returncode == 0, f"pip uninstall failed:\n{proc.stdout}\n{proc.stderr}"
            importlib.invalidate_caches()
            assert not _installed()


def rpiaas(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rpiaas`` command."""
    return subprocess.run([str(RPIAAS), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def read_tasks(run: Path) -> list[dict[str, str]]:
    with open(run / "tasks.csv", newline="") as f:
        return list(csv.DictReader(f))


def tenants_of(scenario: Path) -> dict[int, str]:
    return {int(t["id"]): t["tenant"] for t in yaml.safe_load(scenario.read_text())["workload"]["tasks"]}


def peak_cores(rows: list[dict[str, str]], tenants: dict[int, str]) -> dict[str, int]:
    """The most cores each tenant ran at once, from the start and end times of its tasks."""
    changes = []
    for row in rows:
        if row["start_s"]:
            tenant, cores = tenants[int(row["task_id"])], int(row["cores"])
            # at equal times ends sort first: the control plane frees before it starts
            changes += [(float(row["start_s"]), 1, tenant, cores),
                        (float(row["end_s"]), 0, tenant, -cores)]
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    for _, _, tenant, delta in sorted(changes):
        running[tenant] = running.get(tenant, 0) + delta
        peak[tenant] = max(peak.get(tenant, 0), running[tenant])
    return peak


def test_peak_cores_counts_overlaps_only() -> None:
    rows = [{"task_id": "1", "start_s": "0.0", "end_s": "10.0", "cores": "2"},
            {"task_id": "2", "start_s": "10.0", "end_s": "20.0", "cores": "2"},
            {"task_id": "3", "start_s": "5.0", "end_s": "15.0", "cores": "1"},
            {"task_id": "4", "start_s": "", "end_s": "0.0", "cores": "4"}]
    assert peak_cores(rows, {1: "a", 2: "a", 3: "a", 4: "a"}) == {"a": 3}


def test_the_installed_policy_is_listed_with_its_origin(example: Path) -> None:
    proc = rpiaas("policies", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    quota = rows["tenant_quota"]
    assert re.sub(r"[-_.]+", "-", quota["origin"]).lower() == DIST
    assert quota["version"] == importlib.metadata.version(DIST)
    assert quota["summary"].startswith("Cap the cores each tenant runs at once")
    assert "placement" in quota["kinds"] and "max_cores_per_tenant" in quota["params"]
    assert all(rows[cls.NAME]["origin"] == "builtin" for cls in BUILTIN_POLICIES)
    table = rpiaas("policies")
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith("tenant_quota "))
    assert quota["version"] in line and "max_cores_per_tenant=" in line


def test_the_example_scenario_runs_by_name_within_the_quotas(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = rpiaas("run", EXAMPLE_SCENARIO, "--out", out, "--quiet", cwd=example)
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {out}" in proc.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["policy"] == "tenant_quota"
    params = run["policy_params"]
    assert params == {"max_cores_per_tenant": 8, "quotas": {"web": 3}, "affinity": True}
    rows = read_tasks(out)
    tenants = tenants_of(example / EXAMPLE_SCENARIO)
    assert sorted(int(r["task_id"]) for r in rows) == sorted(tenants)
    states = {int(r["task_id"]): r["state"] for r in rows}
    # the web task of 4 cores is over web's quota of 3: rejected at arrival
    assert [t for t, s in states.items() if s != "completed"] == [31]
    assert states[31] == "rejected"
    # the defining behaviour: no tenant ever runs more cores than its quota ...
    peak = peak_cores(rows, tenants)
    quota = {t: params["quotas"].get(t, params["max_cores_per_tenant"]) for t in peak}
    assert all(peak[t] <= quota[t] for t in peak), (peak, quota)
    assert peak["batch"] == quota["batch"] and peak["ml"] == quota["ml"]
    # ... and a tenant at its quota does not hold up the others: web never waits
    waits = [float(r["wait_s"]) for r in rows if r["wait_s"] and tenants[int(r["task_id"])] == "web"]
    assert len(waits) == 20 and max(waits) == 0.0


def test_without_quotas_the_same_scenario_overruns_them(example: Path, tmp_path: Path) -> None:
    """The scenario does test the quota: best fit lets tenants exceed it and makes web wait."""
    out = tmp_path / "run"
    proc = rpiaas("run", EXAMPLE_SCENARIO, "--policy", "best_fit", "--out", out, "-q", cwd=example)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "run.json").read_text())["policy"] == "best_fit"
    rows = read_tasks(out)
    tenants = tenants_of(example / EXAMPLE_SCENARIO)
    assert peak_cores(rows, tenants)["batch"] > 8
    assert max(float(r["wait_s"]) for r in rows if tenants[int(r["task_id"])] == "web") > 0


def test_the_examples_own_tests_pass(example: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=example, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b\d+ passed\b", proc.stdout)


SMALL = """\
cluster:
  clusters:
    - {domain: lab.test, prefix: 10.0.1, count: 2, type: rpi4b}
workload:
  tasks:
    - {arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 10, tenant: a}
policy:
  name: tenant_quota
  params:
    max_cores_per_tenant: 4
"""


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_an_unknown_policy_is_an_input_error_listing_the_known(example: Path, tmp_path: Path) -> None:
    text = SMALL.replace("name: tenant_quota", "name: tenant_quotas")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    proc = rpiaas("run", scenario, "--out", tmp_path / "run")
    assert proc.returncode == 2
    line = _line(text, "name: tenant_quotas")
    assert proc.stderr.startswith(f"error: {scenario}:{line}: policy.name: unknown policy 'tenant_quotas'")
    known = re.search(r"\(known: (.*)\)", proc.stderr)
    assert known is not None
    assert set(known.group(1).split(", ")) == {cls.NAME for cls in BUILTIN_POLICIES} | {"tenant_quota"}
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("param", "message"), [
    ("max_cores_per_tenant: eight", "expected int, got 'eight'"),
    ("max_cores_per_tenant: 4.5", "expected int, got 4.5"),
    ("max_cores_per_tenant: true", "expected int, got True"),
    ("max_cores: 4", "unknown parameter of policy 'tenant_quota' "
                     "(known: affinity, max_cores_per_tenant, quotas)"),
    ("affinity: 1", "expected bool, got 1"),
])
def test_a_bad_parameter_names_its_key_file_and_line(example: Path, tmp_path: Path, param: str,
                                                    message: str) -> None:
    text = SMALL.replace("max_cores_per_tenant: 4", param)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    key = param.split(":")[0]
    proc = rpiaas("run", scenario, "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: {scenario}:{_line(text, param)}: policy.params.{key}: {message}\n"
    assert not (tmp_path / "run").exists()
    # validate reports the same
    assert rpiaas("validate", scenario).stderr == proc.stderr


def test_a_parameter_the_constructor_rejects_is_still_an_input_error(example: Path,
                                                                    tmp_path: Path) -> None:
    text = SMALL.replace("max_cores_per_tenant: 4", "max_cores_per_tenant: 0")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    proc = rpiaas("validate", scenario)
    assert proc.returncode == 2
    assert re.fullmatch(rf"error: {re.escape(str(scenario))}:\d+: policy\.params(\.\w+)?: "
                        r"expected at least 1 core, got 0\n", proc.stderr)


def test_a_parameter_the_constructor_rejects_names_its_key(example: Path, tmp_path: Path) -> None:
    text = SMALL.replace("max_cores_per_tenant: 4", "max_cores_per_tenant: 0")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    proc = rpiaas("validate", scenario)
    line = _line(text, "max_cores_per_tenant: 0")
    assert proc.stderr == (f"error: {scenario}:{line}: policy.params.max_cores_per_tenant: "
                           "expected at least 1 core, got 0\n")
