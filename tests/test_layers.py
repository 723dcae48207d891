"""The layers of docs/architecture.md, checked on the source.

Every package (and each module at the package root) is one layer, in the
order of docs/architecture.md ("Layers"), top to bottom.  A module may import
at run time only from its own package or from a layer below it; every
``import`` counts, including those inside functions (an import deferred for
speed is still a dependency).  An import under ``if TYPE_CHECKING:`` names a
type for annotations only and runs nothing: it may name a type of any layer
(a built-in policy annotates its ``view`` with the control plane's
:class:`~rpiaas.core.view.ClusterView`).  No import at all, typing ones
included, may close a circle between modules.  On top of that, the control
plane and the policies import no shell, the live shell nothing of the
simulation shell, and the agent nothing of rpiaas.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"  # a src layout: the package's modules are named from here
PACKAGE = SRC / "rpiaas"

# top to bottom, as docs/architecture.md lists them; a name may import only from those after it
ORDER: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("analysis",),
    ("sweep",),
    ("master",),
    ("client",),
    ("testbed",),
    ("live",),
    ("power",),
    ("sim",),
    ("rundir",),
    ("scenario",),
    ("core",),
    ("policy",),
    ("workload",),
    ("inputs",),
    ("store",),
    ("netboot",),
    ("auth",),
    ("model",),
    ("threads",),
)
LAYERS: dict[str, int] = {name: i for i, names in enumerate(ORDER) for name in names}
FACADE = "rpiaas"  # rpiaas/__init__.py: the public API, re-exporting from every layer (cli reads its
# version)
SHELLS = {"sim", "live", "master", "testbed", "client", "power"}
CONTROL_PLANE = {"core", "policy"}
MAX_ROOT_MODULES = 8


class Import(NamedTuple):
    line: int
    module: str  # the imported module's dotted name ("rpiaas.core.view")
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(package.rglob("*.py"))


def _name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(module: str) -> str:
    """The layer of a dotted module name: ``sim`` for rpiaas.sim.engine, the facade for rpiaas."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def _resolve(name: str, root: Path) -> str:
    """``name`` (``rpiaas.core.view.ClusterView`` or a module) as the module that defines it."""
    parts = name.split(".")
    while parts:
        base = root.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def _typing_blocks(tree: ast.AST) -> set[int]:
    """The ids of every node under an ``if TYPE_CHECKING:``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                out |= {id(n) for n in ast.walk(child)}
    return out


def _imports(path: Path, root: Path = ROOT) -> Iterator[Import]:
    """Every rpiaas import of ``path``, as the modules imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _name(path, root)
    pkg = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    typing = _typing_blocks(tree)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join((*base, node.module)) if node.module else ".".join(base)
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names]
        for name in names:
            if name == "rpiaas" or name.startswith("rpiaas."):
                yield Import(node.lineno, _resolve(name, root), id(node) in typing)


def _violations(root: Path) -> list[str]:
    bad = []
    for path in _modules(root / "rpiaas"):
        me = _name(path, root)
        layer = _top(me)
        if layer == FACADE:
            continue
        where = path.relative_to(root)
        for imp in _imports(path, root):
            other = _top(imp.module)
            if other == layer:
                continue
            if other != FACADE and other not in LAYERS:
                bad.append(f"{where}:{imp.line}: {other} is in no layer (add it to docs/architecture.md "
                           "and ORDER)")
            elif (other == FACADE and layer != "cli") or (
                    other != FACADE and not imp.typing_only and LAYERS[other] <= LAYERS[layer]):
                bad.append(f"{where}:{imp.line}: {layer} imports {imp.module}, which is not below it")
            if layer in CONTROL_PLANE and other in SHELLS:
                bad.append(f"{where}:{imp.line}: the control plane imports a shell ({other})")
            if layer == "live" and other == "sim":
                bad.append(f"{where}:{imp.line}: the live shell imports the simulation shell")
    return bad


def _circles(root: Path) -> list[list[str]]:
    """Every strongly connected set of modules (more than one, or one importing itself)."""
    graph: dict[str, set[str]] = {}
    for path in _modules(root / "rpiaas"):
        me = _name(path, root)
        if me == "rpiaas":
            continue
        graph[me] = {i.module for i in _imports(path, root) if i.module != "rpiaas" and i.module != me}
    # Tarjan's algorithm, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    group.append(m)
                    if m == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_the_order_knows_every_package_and_root_module() -> None:
    tops = {_top(_name(p, SRC)) for p in _modules()} - {FACADE}
    assert tops <= set(LAYERS), f"add to ORDER (and docs/architecture.md): {sorted(tops - set(LAYERS))}"


def test_the_order_is_the_documented_one() -> None:
    """docs/architecture.md lists the layers in the order checked here."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    listed = [line.split()[0].strip("/").removesuffix(".py") for line in block.splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    present = [n for names in ORDER for n in names]
    assert [n for n in listed if n in LAYERS] == [n for n in present if n in listed]
    assert set(present) - {"power"} <= set(listed)


def test_each_module_imports_only_from_below() -> None:
    bad = _violations(SRC)
    assert not bad, "\n".join(bad)


def test_no_import_circles() -> None:
    circles = _circles(SRC)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_package_root_keeps_few_modules() -> None:
    root_modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules


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


@pytest.mark.parametrize(("files", "expected"), [
    # an upward import, relative and absolute
    ({"core/control.py": "from ..sim import engine\nimport rpiaas.live.shell\n", "sim/engine.py": "",
      "live/shell.py": ""}, ["core imports rpiaas.sim.engine", "the control plane imports a shell (sim)",
                              "core imports rpiaas.live.shell", "the control plane imports a shell (live)"]),
    # a deferred import is still one
    ({"model.py": "def f():\n    from .core import control\n", "core/control.py": ""},
     ["model imports rpiaas.core.control"]),
    # a typing-only import may name a type above it
    ({"policy/best_fit.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                            "    from ..core.view import ClusterView\n", "core/view.py": ""}, []),
    # the facade is no layer to import from
    ({"sim/engine.py": "from .. import Task\n"}, ["sim imports rpiaas, which is not below it"]),
])
def test_the_checker_catches_upward_imports(tmp_path: Path, files: dict[str, str],
                                            expected: list[str]) -> None:
    for rel, text in {"__init__.py": "", **files}.items():
        path = tmp_path / "rpiaas" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    found = _violations(tmp_path)
    assert len(found) == len(expected), found
    for want, got in zip(expected, found, strict=True):
        assert want in got


def test_the_checker_finds_a_circle_within_a_package(tmp_path: Path) -> None:
    files = {"live/shell.py": "from .tasks import Tasks\n",
             "live/tasks.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from .shell import LiveRun\n",
             "live/journal.py": "from .tasks import Tasks\n"}
    for rel, text in {"__init__.py": "", **files}.items():
        path = tmp_path / "rpiaas" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    assert _circles(tmp_path) == [["rpiaas.live.shell", "rpiaas.live.tasks"]]
