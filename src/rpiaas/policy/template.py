"""A new policy package, ready to install: what ``rpiaas new-policy NAME`` writes.

:func:`write_package` writes a ``src/`` layout package that installs as is
(``pip install -e DIR``), registers its policy under the ``rpiaas.policies``
entry point (so ``rpiaas policies`` lists it and scenarios name it), and
carries a documented example policy, a scenario that runs it and its own
tests. The policy packs tasks onto the fullest nodes while keeping a
parameter's worth of cores free on each: a constraint (``rpiaas_filter``), a
preference (``rpiaas_score``), a refusal with a reason (``rpiaas_admit``) and
a checked parameter, the pieces most policies are made of.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from ..inputs.source import InputError

__all__ = ["NAME_RULE", "check_name", "default_directory", "package_files", "write_package"]

NAME_RULE = re.compile(r"[a-z][a-z0-9_]*")
"""A policy name: what scenarios write after ``policy:``, and a Python identifier."""


def check_name(name: str) -> None:
    """Raise :class:`~rpiaas.inputs.source.InputError` (key ``NAME``) unless ``name`` is a usable,
    free policy name."""
    if not NAME_RULE.fullmatch(name) or keyword.iskeyword(name) or len(name) > 60:
        raise InputError(f"expected a policy name of lowercase letters, digits and _, starting with a letter "
                         f"(it names a Python module: my_policy), got {name!r}", "NAME")
    from .plugins import available_policies

    taken = available_policies(broken={}).get(name)
    if taken is not None and taken.origin != distribution(name):
        raise InputError(f"policy name {name!r} is already taken by {taken.origin}; "
                         f"see rpiaas policies for the names in use", "NAME")


def distribution(name: str) -> str:
    """The package's distribution name: ``rpiaas-NAME`` with dashes."""
    return "rpiaas-" + name.replace("_", "-")


def default_directory(name: str) -> Path:
    """Where the package goes without ``--dir``: ``./rpiaas-NAME``."""
    return Path(distribution(name))


def package_files(name: str) -> dict[str, str]:
    """The package's files, by path relative to its directory, for policy ``name``."""
    check_name(name)
    values = {"name": name, "module": f"rpiaas_{name}", "cls": _class_name(name),
              "dist": distribution(name), "rpiaas": _requirement()}
    return {path.replace("MODULE", values["module"]).replace("NAME", name): Template(text).substitute(values)
            for path, text in _FILES.items()}


def write_package(name: str, directory: str | Path | None = None, force: bool = False) -> list[Path]:
    """Write the package of policy ``name`` into ``directory`` (default ``./rpiaas-NAME``); the files.

    An existing ``directory`` is refused (:class:`~rpiaas.inputs.source.InputError`, key ``--dir``)
    unless ``force``: then the package's files are written over, and other files are left alone.
    """
    files = package_files(name)
    root = Path(directory) if directory is not None else default_directory(name)
    if root.exists() and not force:
        raise InputError(f"{root} already exists; --force writes the package's files over it", "--dir")
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} exists and is not a directory", "--dir")
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _requirement() -> str:
    """``rpiaas>=MAJOR.MINOR`` of the rpiaas that writes the package (plain ``rpiaas`` from a checkout)."""
    from .plugins import distribution_version

    version = distribution_version("rpiaas")
    if version is None:
        return "rpiaas"
    return "rpiaas>=" + ".".join(version.split(".")[:2])


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or "Policy"


_PYPROJECT = '''\
# An rpiaas policy package. `pip install -e .` registers the policy: `rpiaas policies` lists it,
# and scenarios select it with `policy: $name`.
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "An rpiaas policy: $name."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["$rpiaas", "numpy>=1.24"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The name on the left is only a label; scenarios use the class's NAME ("$name").
[project.entry-points."rpiaas.policies"]
$name = "$module:$cls"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
$module = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_INIT = '''\
"""$dist: the rpiaas policy ``$name``.

Installed, it registers :class:`$cls` under the entry-point group
``rpiaas.policies``; scenarios select it with ``policy: $name``.
"""

from __future__ import annotations

from .policy import NAME, $cls

__all__ = ["NAME", "$cls"]
'''

_POLICY = '''\
"""The ``$name`` policy: pack tasks onto the fullest nodes, keeping some cores free on each.

An example to start from; replace its hooks with your own. It shows the
pieces most policies are made of (docs/writing-a-policy.md and
docs/plugin-hooks.md in rpiaas have the rest):

- ``rpiaas_admit``: refuse, with a reason, a task that could never start;
- ``rpiaas_filter``: a constraint, the nodes a task may go to;
- ``rpiaas_score``: a preference among them (the highest sum wins);
- a parameter, checked in the constructor, set from the scenario:
  ``policy: {name: $name, params: {headroom_cores: 1}}``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from rpiaas import ClusterView, Policy, Task, hookimpl
from rpiaas.policy import PolicyParamError

NAME = "$name"


class $cls(Policy):
    """Pack each task onto the fullest node with room, keeping headroom_cores free on every node.

    The first line above is what ``rpiaas policies`` shows. Packing leaves
    whole nodes idle (for a power policy to switch off); the headroom keeps a
    little room on each busy node for what the node runs besides its tasks.

    :param headroom_cores: cores each node keeps free; a task that would use
        them waits for a node with more room.
    """

    NAME = NAME

    def __init__(self, headroom_cores: int = 0) -> None:
        if headroom_cores < 0:
            raise PolicyParamError("headroom_cores", f"expected 0 or more cores, got {headroom_cores}")
        self.headroom_cores = headroom_cores

    @hookimpl
    def rpiaas_admit(self, task: Task, view: ClusterView) -> str | None:
        if not np.any(view.cores - self.headroom_cores >= task.cores):
            return f"needs {task.cores} cores; no node has that many beyond its {self.headroom_cores} of headroom"
        return None  # admitted: it joins the queue

    @hookimpl
    def rpiaas_filter(self, task: Task, view: ClusterView) -> npt.NDArray[np.bool_]:
        # the nodes the task leaves with at least the headroom free
        return np.asarray(view.cores_free - task.cores >= self.headroom_cores)

    @hookimpl
    def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64]:
        # fewest free cores first: pack; ties go to the lowest node index
        return -np.asarray(view.cores_free, dtype=float)
'''

_SCENARIO = '''\
# A small cluster and workload to try the $name policy on:
#   rpiaas run scenarios/example.yaml --out runs/$name
#   rpiaas run scenarios/example.yaml --policy best_fit --out runs/best_fit
#   rpiaas compare runs/$name runs/best_fit
name: $name-example
seed: 1
cluster:
  clusters:
    - {domain: lab.test, prefix: 10.0.1, count: 4, type: rpi4b}
workload:
  generator:
    count: 100
    arrival: {rate_per_s: 0.05}
    cores: {dist: choice, values: [1, 2]}
    mem_mb: 256
    work_core_s: {dist: exponential, mean: 120}
policy:
  name: $name
  params: {headroom_cores: 1}
'''

_TEST = '''\
"""Tests of the $name policy: the control plane driven by hand, then the example scenario simulated.

Run them with the package installed: ``pip install -e '.[test]' && pytest``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from rpiaas import PROFILES, ControlPlane, Node, Reject, Start, Task, TaskArrived, load_scenario
from rpiaas.policy import PolicyParamError, get_policy
from rpiaas.sim import simulate

from $module import NAME, $cls

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "example.yaml"


def pis(n: int) -> list[Node]:
    """``n`` Raspberry Pi 4Bs (4 cores each), all on."""
    return [Node(i, f"node{i}", "lab.test", PROFILES["rpi4b"]) for i in range(n)]


def started(actions: Sequence[object]) -> dict[int, int]:
    """Task id -> node of the Start actions."""
    return {a.task.id: a.node for a in actions if isinstance(a, Start)}


def test_it_packs_onto_the_fullest_node_with_room() -> None:
    cp = ControlPlane(pis(3), [$cls()])
    tasks = [TaskArrived(Task(i, 0.0, 2, 256, 60.0)) for i in (1, 2, 3)]  # 2 cores each
    assert started(cp.step(0.0, list(tasks))) == {1: 0, 2: 0, 3: 1}


def test_it_keeps_the_headroom_free() -> None:
    cp = ControlPlane(pis(3), [$cls(headroom_cores=1)])
    tasks = [TaskArrived(Task(i, 0.0, 2, 256, 60.0)) for i in (1, 2, 3)]
    # two 2-core tasks on one 4-core node would leave no core free
    assert started(cp.step(0.0, list(tasks))) == {1: 0, 2: 1, 3: 2}


def test_a_task_that_could_never_start_is_refused_with_a_reason() -> None:
    cp = ControlPlane(pis(2), [$cls(headroom_cores=1)])
    actions = cp.step(0.0, [TaskArrived(Task(1, 0.0, 4, 256, 60.0))])
    assert [a.reason for a in actions if isinstance(a, Reject)] == [
        "needs 4 cores; no node has that many beyond its 1 of headroom"]


def test_a_bad_parameter_is_refused() -> None:
    with pytest.raises(PolicyParamError, match="expected 0 or more cores"):
        $cls(headroom_cores=-1)


def test_it_is_installed_and_runs_the_example_scenario(tmp_path: Path) -> None:
    assert get_policy(NAME).cls is $cls  # found through the entry point: the package is installed
    _, out = simulate(load_scenario(SCENARIO), tmp_path / "run")
    assert out is not None
    run = json.loads((out / "run.json").read_text())
    assert run["policy"] == NAME and run["summary"]["completed"] == 100
'''

_README = '''\
# $dist

An [rpiaas](https://pypi.org/project/rpiaas/) policy package: the policy
`$name` (class `$cls` in `src/$module/policy.py`), registered under the
`rpiaas.policies` entry point. As written, it packs tasks onto the fullest
nodes while keeping `headroom_cores` free on each; make it your own.

## Install, list, run

```console
$$ pip install -e '.[test]'
$$ rpiaas policies $name
$$ rpiaas run scenarios/example.yaml --out runs/$name
$$ rpiaas run scenarios/example.yaml --policy best_fit --out runs/best_fit
$$ rpiaas compare runs/$name runs/best_fit
```

## Parameters

```yaml
policy:
  name: $name
  params:
    headroom_cores: 1   # cores each node keeps free (default 0)
```

## Test

```console
$$ pytest
```

`tests/test_$name.py` drives the control plane by hand (which node each
task goes to) and simulates `scenarios/example.yaml`.

## Layout

```text
pyproject.toml              the package, and the entry point rpiaas finds the policy by
src/$module/policy.py       the policy: NAME, its hooks, its parameters
src/$module/__init__.py     what the package exports
scenarios/example.yaml      a scenario that runs it
tests/test_$name.py         its tests
```
'''

_GITIGNORE = '''\
build/
*.egg-info/
__pycache__/
.pytest_cache/
runs/
'''

_FILES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    ".gitignore": _GITIGNORE,
    "src/MODULE/__init__.py": _INIT,
    "src/MODULE/policy.py": _POLICY,
    "src/MODULE/py.typed": "",
    "scenarios/example.yaml": _SCENARIO,
    "tests/test_NAME.py": _TEST,
}
