"""The import rules of docs/architecture.md, checked on the source.

Every ``import`` of every module counts, including those inside functions (an
import deferred for speed is still a dependency).  A package may import only
from its own layer or the layers below it; on top of that, the policies and
the control plane import no shell, the live shell nothing of the simulation
shell, and the agent nothing of rpiaas.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rpiaas"

# top (1) to bottom; a module imports only from its own layer or a higher number
LAYERS: dict[str, int] = {
    "cli": 1, "__main__": 1,
    "analysis": 2, "sweep": 2, "testbed": 2,
    "master": 3,
    "live": 4, "sim": 4,
    "shell": 5, "rundir": 5, "store": 5, "netboot": 5,
    "control": 6, "decisions": 6, "placement": 6, "queuepass": 6, "rebalance": 6, "ledger": 6,
    "view": 6,
    "plugins": 6, "policies": 6, "hookspecs": 6, "policy": 6, "scenario": 6,
    "cluster": 7, "workload": 7, "inputs": 7,
    "model": 8, "events": 8, "eventlog": 8,
}
SHELLS = {"sim", "live", "shell", "master", "testbed"}
CONTROL_PLANE = {"control", "decisions", "placement", "queuepass", "rebalance", "ledger", "view", "plugins",
                 "policies", "hookspecs", "policy"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def _top(path: Path) -> str:
    """The first component under rpiaas/ of a module file (``sim`` for rpiaas/sim/engine.py)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, first component under rpiaas) of every rpiaas import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(ROOT).with_suffix("").parts  # ("rpiaas", "sim", "engine")
    pkg = here[:-1]  # the package a relative import starts from (for __init__ too)
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join((*base, node.module)) if node.module else ".".join(base)
                names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            elif node.module:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "rpiaas" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_the_rules_know_every_package() -> None:
    tops = {_top(p) for p in _modules()}
    assert tops <= set(LAYERS), f"add to LAYERS (and docs/architecture.md): {sorted(tops - set(LAYERS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    me = _top(path)
    bad = []
    for line, other in _imports(path):
        if other == me or other not in LAYERS:
            continue
        if LAYERS[other] < LAYERS[me]:
            bad.append(f"{path.relative_to(ROOT)}:{line}: {me} (layer {LAYERS[me]}) imports "
                       f"{other} (layer {LAYERS[other]}), a layer above it")
        if me in CONTROL_PLANE and other in SHELLS:
            bad.append(f"{path.relative_to(ROOT)}:{line}: the control plane imports a shell ({other})")
        if me == "live" and other == "sim":
            bad.append(f"{path.relative_to(ROOT)}:{line}: the live shell imports the simulation shell")
    assert not bad, "\n".join(bad)


def test_the_agent_imports_nothing_of_rpiaas() -> None:
    bad = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {m}" for m in mods
                    if m == "rpiaas" or m.startswith("rpiaas.")]
    assert not bad, "\n".join(bad)


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a relative import from the control plane up into the sim shell."""
    fake = PACKAGE / "control.py"
    tree_imports = _imports(fake)
    assert all(LAYERS[o] >= LAYERS["control"] for _, o in tree_imports if o in LAYERS)
    probe = tmp_path / "rpiaas" / "control.py"
    probe.parent.mkdir()
    probe.write_text("from .sim import engine\nimport rpiaas.live.shell\n")
    found = [o for _, o in _imports_at(probe, tmp_path)]
    assert found == ["sim", "live"]


def _imports_at(path: Path, root: Path) -> list[tuple[int, str]]:
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return _imports(path)
    finally:
        ROOT = saved
