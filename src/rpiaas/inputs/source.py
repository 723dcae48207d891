"""Reading YAML and JSON input files with the line of every key kept.

Every input error in rpiaas names the file, the line and the key path:
``scenario.yaml:14: workload.generator.cores: expected a positive integer,
got -1``.  :func:`load` parses a document into plain Python data plus a map
from key path to line; :class:`Source` turns checks on that data into
:class:`InputError` with those coordinates.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import limits
from .errors import InputError, LimitError, did_you_mean
from .yamlload import Loader, Refused

__all__ = ["InputError", "KeyPath", "LimitError", "Source", "load", "load_file"]

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """``("a", 0, "b")`` -> ``a[0].b``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns a composed YAML node tree into plain data, recording where each key is."""

    def __init__(self, file: str, lines: dict[KeyPath, int], raw: dict[KeyPath, str]) -> None:
        self.file = file
        self.lines = lines
        self.raw = raw
        self.active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def fail(self, message: str, node: yaml.Node, path: KeyPath) -> NoReturn:
        raise InputError(message, self.file, node.start_mark.line + 1, dotted(path))

    def build(self, node: yaml.Node, path: KeyPath, line: int) -> Any:
        self.lines[path] = line
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            self.fail("an alias refers to a node that contains it", node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    self.fail(f"unsupported tag {_tag(node.tag)}", node, path)
                return self.mapping(node, path)
            if node.tag != _SEQ_TAG:
                self.fail(f"unsupported tag {_tag(node.tag)}", node, path)
            return [self.build(v, (*path, i), v.start_mark.line + 1)
                    for i, v in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                merges.append(vnode)
                continue
            if isinstance(knode, yaml.ScalarNode):
                key = knode.value
            else:
                self.fail("a key must be a plain value, not a mapping or list", knode, path)
            if key in out:
                self.fail(f"duplicate key {key!r}", knode, (*path, key))
            out[key] = self.build(vnode, (*path, key), knode.start_mark.line + 1)
        # YAML merge keys (``<<: *defaults``): explicit keys win, then earlier merges
        for vnode in merges:
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for snode in sources:
                if not isinstance(snode, yaml.MappingNode):
                    self.fail("<< merges a mapping (or a list of mappings) into this one", snode, path)
                lines: dict[KeyPath, int] = {}
                raw: dict[KeyPath, str] = {}
                sub = _Builder(self.file, lines, raw)
                sub.active = self.active
                merged = sub.build(snode, path, 0)
                for key, value in merged.items():
                    if key in out:
                        continue
                    out[key] = value
                    n = len(path)
                    self.lines.update((p, ln) for p, ln in lines.items() if p[n:n + 1] == (key,))
                    self.raw.update((p, r) for p, r in raw.items() if p[n:n + 1] == (key,))
        return out

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.fail(f"unsupported tag {_tag(node.tag)}", node, path)
        try:
            value = _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, IndexError, KeyError) as e:
            reason = " ".join(str(e).split()).split(";")[0][:120] if node.value else "no value"
            self.fail(f"{describe(node.value)} is not a valid {_tag(node.tag)}: {reason}", node, path)
        if node.style is None and not isinstance(value, str) and str(value) != node.value:
            # keep the text: ``prefix: 10.10`` or ``serial: 00001234`` are strings to us
            self.raw[path] = node.value
        return value


def _tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def load(text: str, file: str = "<input>", raw: dict[KeyPath, str] | None = None,
         ) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML (or JSON) text; return the data and the line of every key path.

    A key's line is the line the key is written on; a list item's, the line it
    starts on.  If ``raw`` is given it receives the source text of every
    unquoted scalar that YAML read as something other than a string.
    """
    check_size(len(text), file)
    try:
        loader = Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except Refused as e:
        raise LimitError(e.message, file, e.line) from None
    except RecursionError:  # the limits keep well inside the stack; this is the last guard
        raise LimitError(f"nested too deeply ({limits.DEPTH.hint()})", file) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or str(e)
        if e.context and problem.startswith("but "):  # "expected ..., but found ..."
            problem = f"{e.context}, {problem}"
        raise InputError(f"not valid YAML: {problem}", file, line) from None
    except yaml.reader.ReaderError as e:  # a control character: located by position only
        line = text.count("\n", 0, e.position) + 1
        char = chr(e.character) if isinstance(e.character, int) else e.character
        raise InputError(f"not valid YAML: character {char!r} is not allowed", file, line) from None
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {' '.join(str(e).split())}", file) from None
    lines: dict[KeyPath, int] = {}
    if root is None:
        return None, lines
    data = _Builder(file, lines, raw if raw is not None else {}).build(
        root, (), root.start_mark.line + 1)
    return data, lines


def check_size(size: int, file: str) -> None:
    """Refuse input of more than ``RPIAAS_MAX_INPUT_MB`` (bytes or characters)."""
    limit = limits.INPUT_MB.value() * 1e6
    if size > limit:
        raise LimitError(f"{'more than ' if size == int(limit) + 1 else ''}{size / 1e6:,.1f} MB of "
                         f"input, more than rpiaas reads ({limits.INPUT_MB.hint()})", file)


def load_file(path: str | Path) -> Source:
    """Read a YAML or JSON file into a :class:`Source` (at most ``RPIAAS_MAX_INPUT_MB``)."""
    p = Path(path)
    try:
        # read one byte past the limit, never more: a huge file, /dev/zero or a pipe
        # that never ends are refused after reading that much
        cap = int(limits.INPUT_MB.value() * 1e6) + 1
        with p.open("rb") as f:
            data = f.read(cap)
        check_size(len(data), str(path))
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", str(path)) from None
    if p.suffix.lower() == ".json":
        # strict JSON first (YAML would accept things JSON does not) ...
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON: {e.msg}", str(path), e.lineno) from None
        except RecursionError:
            raise LimitError(f"nested too deeply ({limits.DEPTH.hint()})", str(path)) from None
        # ... then as YAML for the lines: JSON allows tab indentation, YAML does not
        # (a tab inside a JSON string is invalid JSON, so this changes no value)
        text = text.replace("\t", "    ")
    raw: dict[KeyPath, str] = {}
    data, lines = load(text, str(path), raw)
    return Source(data, lines, str(path), base=p.parent, raw=raw)


_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class Source:
    """Parsed input data with the location of each key, and typed checks on it."""

    def __init__(self, data: Any, lines: dict[KeyPath, int], file: str,
                 base: Path | None = None, raw: dict[KeyPath, str] | None = None) -> None:
        self.data = data
        self.lines = lines
        self.file = file
        self.base = base or Path.cwd()
        self.raw = raw if raw is not None else {}
        self.overridden: set[KeyPath] = set()
        self.origins: dict[KeyPath, str] = {}  # overridden path -> the option that set it
        self.as_text: set[KeyPath] = set()  # paths whose raw text was used instead of the value

    # -- errors ------------------------------------------------------------
    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest enclosing key that has one."""
        p = path
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())

    def origin(self, path: KeyPath) -> str | None:
        """The option (``--set``, ``--seed`` ...) that set ``path`` or a parent of it."""
        for i in range(len(path), 0, -1):
            if path[:i] in self.overridden:
                return self.origins.get(path[:i], "--set")
        return None

    def fail(self, path: KeyPath, message: str, error: type[InputError] = InputError) -> NoReturn:
        """Raise ``error`` at ``path`` (the option's name if an override set it)."""
        origin = self.origin(path)
        if origin is not None:
            raise error(message, origin, None, dotted(path))
        raise error(message, self.file, self.line_of(path), dotted(path))

    def input_file(self, path: KeyPath, name: str, what: str = "file") -> Path:
        """The file a key names (``name``, relative to this file's folder), which must exist
        and be a file: else an error at ``path`` (a name the system refuses, too long or
        unreadable, included: never an ``OSError``)."""
        file = Path(name)
        file = file if file.is_absolute() else self.base / file
        try:
            if file.is_file():
                return file
            why = f"not a {what}" if file.exists() else f"no such {what}"
        except OSError as e:  # a name too long, a folder without permission, ...
            why = f"cannot read the {what} ({e.strerror or type(e).__name__})"
        shown = str(file) if len(str(file)) <= 200 else str(file)[:200] + "..."
        self.fail(path, f"{why}: {shown!r}")

    def is_file(self, name: str) -> bool:
        """Whether ``name`` (relative to this file's folder) is a readable file's name."""
        file = Path(name)
        try:
            return (file if file.is_absolute() else self.base / file).is_file()
        except OSError:
            return False

    def with_text(self, data: Any, root: KeyPath = ()) -> Any:
        """A copy of ``data`` (found at ``root``) with values read as text put back as text."""
        out = copy.deepcopy(data)
        n = len(root)
        for path in [p for p in self.as_text if p[:n] == root]:
            node = out
            try:
                for key in path[n:-1]:
                    node = node[key]
                if path[n:]:
                    node[path[-1]] = self.raw[path]
            except (KeyError, IndexError, TypeError):
                continue
        return out

    # -- overrides -----------------------------------------------------------
    def override(self, dotted_key: str, value: Any, origin: str = "--set",
                 raw: str | None = None) -> None:
        """Set ``a.b.c`` (list items by number: ``a.0.b``) to ``value`` (``--set``).

        Missing mappings on the way are created; errors about the value later
        name ``origin`` instead of a file line.  ``raw`` is the text the value
        was read from, if it was a plain scalar that YAML did not read as a string.
        """
        parts = dotted_key.split(".")
        if not dotted_key.strip() or any(not k.strip() for k in parts):
            raise InputError(f"bad key path {dotted_key!r}", origin)
        if len(parts) > limits.DEPTH.value():
            raise LimitError(f"a key path of {len(parts):,} parts ({limits.DEPTH.hint()})", origin)
        if self.data is None:
            self.data = {}
        node = self.data
        done: list[str | int] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict):
                key: str | int = part
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                key = int(part)
            else:
                what = dotted(tuple(done)) or "the file"
                kind = (f"a list of {len(node)} items" if isinstance(node, list)
                        else f"not a mapping ({describe(node)})")
                raise InputError(f"cannot set {dotted_key}: {what} is {kind}", origin)
            done.append(key)
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and node.get(key) is None:
                    node[key] = {}
                node = node[key]
        path = tuple(done)
        for p in [p for p in self.raw if p[:len(path)] == path]:
            del self.raw[p]
        if raw is not None:
            self.raw[path] = raw
        self.overridden.add(path)
        self.origins[path] = origin

    # -- typed getters -------------------------------------------------------
    def text(self, path: KeyPath, value: Any) -> Any:
        """``value``, or the text it was written as if YAML typed it (``10.10``, ``on``)."""
        if not isinstance(value, str) and path in self.raw:
            self.as_text.add(path)
            return self.raw[path]
        return value

    def mapping(self, path: KeyPath, value: Any, allowed: Sequence[str] | None = None,
                required: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {describe(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail((*path, key), f"unknown key{did_you_mean(key, allowed)} "
                                           f"(expected one of: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(path, f"missing key {key!r}")
        return value

    def sequence(self, path: KeyPath, value: Any) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {describe(value)}")
        return value

    def string(self, path: KeyPath, value: Any) -> str:
        """A string; a plain scalar YAML read as a number or boolean gives its text."""
        value = self.text(path, value)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"expected a string, got {describe(value)}")
        return str(value)

    def integer(self, path: KeyPath, value: Any, minimum: int | None = None) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        if not ok or (minimum is not None and value < minimum):
            self.fail(path, f"expected {what}, got {describe(value)}")
        return int(value)

    def number(self, path: KeyPath, value: Any, positive: bool = False,
               nonnegative: bool = False) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        if positive:
            what, ok = "a positive number", ok and value > 0
        elif nonnegative:
            what, ok = "a non-negative number", ok and value >= 0
        else:
            what = "a number"
        if not ok:
            self.fail(path, f"expected {what}, got {describe(value)}")
        return float(value)

    def boolean(self, path: KeyPath, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {describe(value)}")
        return value

    def choice(self, path: KeyPath, value: Any, options: Sequence[str]) -> str:
        """One of ``options``; ``on``/``off`` stay words although YAML 1.1 reads them as booleans."""
        value = self.text(path, value)
        if value not in options:
            self.fail(path, f"expected one of {', '.join(options)}, got {describe(value)}"
                            f"{did_you_mean(value, options)}")
        return str(value)

    def mac(self, path: KeyPath, value: Any) -> str:
        s = self.string(path, value)
        if not _MAC.match(s):
            self.fail(path, f"expected a MAC address like dc:a6:32:01:02:03, got {s!r}")
        return s.lower()


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def describe(value: Any) -> str:
    """How a value reads in an error message: `'x'`, `3`, `true`, `a mapping`, `nothing`."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, str) and len(value) > 60:  # never echo a whole line of input back
        return f"{value[:40]!r}... ({len(value):,} characters)"
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
