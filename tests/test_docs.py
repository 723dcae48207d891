"""The documentation is tested.

- Every hook in :mod:`rpiaas.policy.hookspecs` documents each argument, its return
  value and an example, and says whether it stops at the first non-None result.
- Every hook has a section in ``docs/plugin-hooks.md`` and a test in ``tests/``.
- Every fenced ``python`` block in ``docs/*.md`` and ``README.md`` runs.  The
  blocks of one page run in order in one namespace, like a session, in a
  temporary working directory holding copies of ``scenarios/`` and
  ``examples/`` (so paths relative to a checkout work, and whatever a block
  writes is thrown away).  A block needing a service (a testbed, a database)
  may be skipped by putting ``<!-- skip -->`` (or ``<!-- skip: reason -->``)
  on the line before its fence.

This file names no hook itself, so it cannot count as any hook's test.
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
import pytest

from rpiaas.policy import hookspecs

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PLUGIN_HOOKS = ROOT / "docs" / "plugin-hooks.md"
FIRST_RESULT = "Stops at the first non-None result"
SHARED_TREES = ("scenarios", "examples")  # copied into the working directory of doc blocks


def _hooks() -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {name: f for name, f in vars(hookspecs).items()
            if inspect.isfunction(f) and hasattr(f, marker)}


HOOKS = _hooks()


def _firstresult(func: Callable[..., Any]) -> bool:
    return bool(getattr(func, f"{hookspecs.hookspec.project_name}_spec")["firstresult"])


def _flat(text: str) -> str:
    """Text with all whitespace runs made single spaces (docstrings wrap anywhere)."""
    return " ".join(text.split())


def test_the_hooks_are_the_plugin_managers_hooks() -> None:
    pm = pluggy.PluginManager(hookspecs.hookspec.project_name)
    pm.add_hookspecs(hookspecs)
    registered = {name for name in vars(pm.hook) if not name.startswith("_")}
    assert HOOKS and set(HOOKS) == registered


# ---------------------------------------------------------------- (a) hookspec docstrings
@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hookspec_docstring_is_complete(name: str) -> None:
    func = HOOKS[name]
    doc = inspect.getdoc(func) or ""
    assert doc, f"{name} has no docstring"
    args = list(inspect.signature(func).parameters)
    documented = re.findall(r"^:param (\w+):", doc, re.M)
    missing = [a for a in args if a not in documented]
    assert not missing, f"{name}: no ':param NAME:' for {missing}"
    stale = [a for a in documented if a not in args]
    assert not stale, f"{name}: ':param' for arguments it does not take: {stale}"
    assert re.search(r"^:returns:", doc, re.M), f"{name}: no ':returns:'"
    # "Example -- what it shows::" followed by an indented code block
    assert re.search(r"^Example\b.*::\n\n( {4}.*\n|\n)*? {4}\S", doc + "\n", re.M), \
        f"{name}: no 'Example ...::' block"
    if _firstresult(func):
        assert FIRST_RESULT in _flat(doc), f"{name} is firstresult: say {FIRST_RESULT!r}"
    else:
        assert FIRST_RESULT not in _flat(doc), f"{name} is not firstresult but says {FIRST_RESULT!r}"


# ---------------------------------------------------------------- (b) docs page and tests
def _sections(text: str) -> dict[str, str]:
    """Sections of plugin-hooks.md by hook: from a heading like ``### `rpiaas_x(a, b)` ``
    to the next heading of the same or a higher level."""
    out: dict[str, str] = {}
    headings = list(re.finditer(r"^(#{1,6}) (.*)$", text, re.M))
    for i, m in enumerate(headings):
        hook = re.fullmatch(r"`(rpiaas_\w+)\([^)]*\)`\s*", m.group(2))
        if not hook:
            continue
        level = len(m.group(1))
        end = next((h.start() for h in headings[i + 1:] if len(h.group(1)) <= level), len(text))
        out[hook.group(1)] = text[m.start():end]
    return out


@pytest.fixture(scope="module")
def hook_sections() -> dict[str, str]:
    assert PLUGIN_HOOKS.exists(), f"{PLUGIN_HOOKS.relative_to(ROOT)} is missing"
    return _sections(PLUGIN_HOOKS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_in_plugin_hooks(name: str, hook_sections: dict[str, str]) -> None:
    assert name in hook_sections, f"docs/plugin-hooks.md has no section '### `{name}(...)`'"
    section = hook_sections[name]
    args = ", ".join(inspect.signature(HOOKS[name]).parameters)
    assert f"`{name}({args})`" in section, f"docs/plugin-hooks.md: {name} takes ({args})"
    for arg in inspect.signature(HOOKS[name]).parameters:
        assert f"`{arg}`" in section, f"docs/plugin-hooks.md: {name} does not describe `{arg}`"
    says = FIRST_RESULT in _flat(section)
    assert says == _firstresult(HOOKS[name]), \
        f"docs/plugin-hooks.md: {name}: say {FIRST_RESULT!r} exactly when the hook is firstresult"
    assert "```python" in section, f"docs/plugin-hooks.md: {name} has no worked example"


def test_plugin_hooks_documents_no_other_hooks(hook_sections: dict[str, str]) -> None:
    assert set(hook_sections) <= set(HOOKS)


def _test_texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(TESTS.rglob("*.py"))
            if p.resolve() != Path(__file__).resolve()}


def _hook_implementations_in_tests() -> dict[str, set[str]]:
    """Hook name -> the test files with a test policy implementing it (a ``@hookimpl`` method
    of that name in a class that a test function of the same file uses)."""
    import ast

    found: dict[str, set[str]] = {}
    for name, text in _test_texts().items():
        tree = ast.parse(text)
        used = {n.id for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name.startswith("test")
                for n in ast.walk(f) if isinstance(n, ast.Name)}
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in used):
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and any(
                        (isinstance(d, ast.Name) and d.id == "hookimpl")
                        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name)
                            and d.func.id == "hookimpl") for d in fn.decorator_list):
                    found.setdefault(fn.name, set()).add(name)
    return found


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_test(name: str) -> None:
    """A hook is tested when a test drives a policy of its own that implements it."""
    assert name in _hook_implementations_in_tests(), \
        f"no test in tests/ drives a policy implementing {name} (a @hookimpl method in a class it uses)"


# ---------------------------------------------------------------- (c) code blocks
@dataclass(frozen=True)
class Block:
    """A fenced code block of a Markdown file."""

    path: Path
    line: int  # of the first line of code
    lang: str
    code: str
    skip: str | None  # the reason of a preceding skip comment ("" without one), else None


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_SKIP = re.compile(r"^\s*<!--\s*skip(?::\s*(?P<reason>.*?))?\s*-->\s*$")


def code_blocks(text: str, path: Path) -> list[Block]:
    """The fenced code blocks of ``text``, with the skip comment on the line before each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m["indent"], m["fence"]
        lang = m["info"].strip().split(" ")[0].lower() if m["info"].strip() else ""
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(prev)
        start = i + 1
        j = start
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                      and lines[j].strip().strip(fence[0]) == ""):
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: code block is not closed")
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[start:j]]
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n",
                            (skip["reason"] or "") if skip else None))
        i = j + 1
    return blocks


def test_code_blocks_are_found() -> None:
    text = "\n".join([
        "# Page", "", "```python", "x = 1", "```", "",
        "<!-- skip: needs a testbed -->", "```python", "connect()", "```",
        "", "```console", "$ rpiaas run", "```",
        "1. a list", "   ```python", "   y = x + 1", "   ```",
        "<!-- skip -->", "", "````python", "```", "````",
    ])
    blocks = code_blocks(text, Path("page.md"))
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks] == [
        (4, "python", "x = 1\n", None),
        (9, "python", "connect()\n", "needs a testbed"),
        (13, "console", "$ rpiaas run\n", None),
        (17, "python", "y = x + 1\n", None),
        (22, "python", "```\n", ""),
    ]
    with pytest.raises(ValueError, match=re.escape("page.md:1: code block is not closed")):
        code_blocks("```python\nx = 1\n", Path("page.md"))


def _pages() -> list[Path]:
    pages = sorted((ROOT / "docs").glob("*.md"))
    readme = ROOT / "README.md"
    return pages + ([readme] if readme.exists() else [])


def _python_blocks(page: Path) -> list[Block]:
    return [b for b in code_blocks(page.read_text(encoding="utf-8"), page) if b.lang == "python"]


PAGES = _pages()
SKIPPED = [b for page in PAGES for b in _python_blocks(page) if b.skip is not None]


def test_the_policy_docs_have_examples_to_run() -> None:
    for name in ("writing-a-policy.md", "plugin-hooks.md"):
        runnable = [b for b in _python_blocks(ROOT / "docs" / name) if b.skip is None]
        assert len(runnable) >= 5, f"docs/{name}: only {len(runnable)} python blocks run"


def run_blocks(blocks: list[Block], name: str) -> dict[str, Any]:
    """Run ``blocks`` in order in one fresh module; tracebacks point into the Markdown file."""
    module = types.ModuleType(name)
    sys.modules[name] = module  # so dataclasses, pickle and typing can find it
    try:
        for block in blocks:
            # pad so that line numbers in tracebacks are the file's
            code = compile("\n" * (block.line - 1) + block.code, str(block.path), "exec")
            exec(code, module.__dict__)
    finally:
        del sys.modules[name]
    return module.__dict__


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [b for b in _python_blocks(page) if b.skip is None]
    if not blocks:
        pytest.skip(f"{page.relative_to(ROOT)} has no python blocks")
    for tree in SHARED_TREES:
        if (ROOT / tree).is_dir():
            shutil.copytree(ROOT / tree, tmp_path / tree, ignore=shutil.ignore_patterns(
                "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(page)])
    run_blocks(blocks, "_doc_" + re.sub(r"\W", "_", page.stem))


def test_run_blocks_fails_at_the_markdown_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Intro\n\n```python\nx = 1\n```\n\n```python\nassert x == 2, 'x is not 2'\n```\n")
    with pytest.raises(AssertionError, match="x is not 2") as err:
        run_blocks(_python_blocks(page), "_doc_page")
    frames = traceback.extract_tb(err.value.__traceback__)
    assert (frames[-1].filename, frames[-1].lineno) == (str(page), 8)


@pytest.mark.parametrize("block", SKIPPED, ids=[f"{b.path.name}:{b.line}" for b in SKIPPED])
def test_skipped_python_blocks_say_why_and_still_compile(block: Block) -> None:
    """A block marked skip is not run, but it must give its reason and be valid Python."""
    where = f"{block.path.relative_to(ROOT)}:{block.line}"
    assert block.skip, f"{where}: a skipped block must say why (<!-- skip: REASON -->)"
    compile(block.code, where, "exec")


def test_api_doc_lists_exactly_the_public_names() -> None:
    import re

    import rpiaas

    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)[`(]", text))
    public = set(rpiaas.__all__)
    assert public <= listed, public - listed
    documented_public = {name for name in listed if hasattr(rpiaas, name)} - {"__all__"}
    assert documented_public <= public, documented_public - public


# ---------------------------------------------------------------- the docs say what a run writes
def _listed(text: str, lead: str) -> list[str]:
    """The backquoted, comma-separated column list that follows ``lead`` in ``text`` (after a
    colon)."""
    m = re.search(re.escape(lead) + r"[^:]*:\s*`([^`]+)`", text)
    assert m is not None, f"no column list after {lead!r}"
    return [c.strip() for c in " ".join(m.group(1).split()).split(",")]


def test_the_quickstart_lists_the_columns_a_run_writes(tmp_path: Path) -> None:
    from rpiaas.rundir.format import NODE_COLUMNS, PART_COLUMNS, TASK_COLUMNS
    from rpiaas.scenario import load_scenario
    from rpiaas.sim import simulate

    text = (ROOT / "docs" / "quickstart.md").read_text()
    assert _listed(text, "`tasks.csv` has one row per task") == list(TASK_COLUMNS)
    assert _listed(text, "`nodes.csv` samples every node") == list(NODE_COLUMNS)
    assert _listed(text, "`parts.csv` lists the parts") == list(PART_COLUMNS)
    # and the files a run writes have exactly those headers
    _, run = simulate(load_scenario(ROOT / "scenarios" / "parallel-jobs.yaml"), tmp_path / "run")
    assert run is not None
    for name, columns in (("tasks.csv", TASK_COLUMNS), ("nodes.csv", NODE_COLUMNS), ("parts.csv", PART_COLUMNS)):
        assert (run / name).read_text().splitlines()[0].split(",") == list(columns), name


def test_the_node_type_table_is_the_built_in_types() -> None:
    from rpiaas.model import PROFILES

    text = (ROOT / "docs" / "scenario.md").read_text()
    rows = re.findall(r"^\| `(\w+)`(?: \(also `(\w+)`\))? \| ([^\n]+) \|$", text, flags=re.M)
    table = {name: (alias, [c.strip() for c in cells.split("|")]) for name, alias, cells in rows
             if name in PROFILES}
    canonical = {t.name for t in PROFILES.values()}
    assert set(table) == canonical
    for name, (alias, cells) in table.items():
        t = PROFILES[name]
        assert [float(c) for c in cells] == [t.cores, t.mem_mb, t.speed, t.power_idle_w, t.power_max_w,
                                             t.power_off_w, t.boot_s, t.link_mbps, t.image_cache_mb], name
        if alias:
            assert PROFILES[alias] is t or PROFILES[alias] == t, alias
