"""No object reads another's private state.

An AST scan of every module of ``rpiaas/`` for ``x._name`` where ``x`` is
anything but ``self``, ``cls`` or a module the file imports (``sys._getframe``
is a module's business; ``ledger._move`` is not).  Dunder names
(``__func__``, ``__name__``) are Python's protocol, not private state.

The one allowance is the SimPy subclass (``rpiaas/sim/environment.py``):
SimPy's own step reads an event's ``_ok`` and ``_value``, so its loop does
too, on the SimPy versions pyproject.toml pins.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "rpiaas"
ALLOWED = {"src/rpiaas/sim/environment.py"}


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            # ``from x import y``: y may be a module (``from . import limits``); a class or a
            # function imported so has no private state of an object either
            names |= {a.asname or a.name for a in node.names}
    return names


def private_reads(path: Path, root: Path = ROOT) -> list[str]:
    """Every ``x._name`` of ``path`` where ``x`` is not ``self``, ``cls`` or an imported name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = _imported_modules(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in modules):
            continue
        found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_objects_private_state() -> None:
    found = [line for path in sorted(PACKAGE.rglob("*.py"))
             if str(path.relative_to(ROOT)) not in ALLOWED for line in private_reads(path)]
    assert not found, f"{len(found)} reads of another object's private state:\n" + "\n".join(found)


def test_the_scan_finds_what_it_should(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nfrom . import limits\n\n"
                     "class A:\n"
                     "    def f(self, other):\n"
                     "        self._x = other._y\n"        # other._y: found
                     "        sys._getframe(0)\n"          # a module's: not
                     "        limits._cache\n"             # an imported module's: not
                     "        return self.ledger._move, other.__class__\n")  # self.ledger._move: found
    assert [line.split(": ", 1)[1] for line in private_reads(probe, tmp_path)] == [
        "other._y", "self.ledger._move"]
