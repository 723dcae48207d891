"""Reading YAML and JSON input files with the line of every key kept.

Every input error in rpiaas names the file, the line and the key path:
``scenario.yaml:14: workload.generator.cores: expected a positive integer,
got -1``.  :func:`load` parses a document into plain Python data plus a map
from key path to line; :class:`Source` turns checks on that data into
:class:`InputError` with those coordinates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

__all__ = ["InputError", "KeyPath", "Source", "load", "load_file"]

KeyPath = tuple[str | int, ...]


class InputError(ValueError):
    """Bad input, located: ``file:line: key.path: message``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 path: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        where = file or "<input>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {path + ': ' if path else ''}{message}")


def dotted(path: KeyPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = yaml.safe_load(yaml.serialize(knode)) if not isinstance(knode, yaml.ScalarNode) else knode.value
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise InputError(f"duplicate key {key!r}", file, knode.start_mark.line + 1,
                                 dotted((*path, key)))
            out[key] = _construct(vnode, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*path, i), lines, file) for i, v in enumerate(node.value)]
    # scalars: let PyYAML's safe resolver pick the type
    return yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


def load(text: str, file: str = "<input>") -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML (or JSON) text; return the data and the line of every key path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"not valid YAML: {e.problem or e}", file, line) from None
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}", file) from None
    lines: dict[KeyPath, int] = {}
    if root is None:
        return None, lines
    return _construct(root, (), lines, file), lines


def load_file(path: str | Path) -> Source:
    """Read a YAML or JSON file into a :class:`Source`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", str(path)) from None
    if p.suffix.lower() == ".json":
        # JSON allows tab indentation, YAML does not; tabs inside JSON strings must be escaped
        text = text.replace("\t", "    ")
    data, lines = load(text, str(path))
    return Source(data, lines, str(path), base=p.parent)


_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class Source:
    """Parsed input data with the location of each key, and typed checks on it."""

    def __init__(self, data: Any, lines: dict[KeyPath, int], file: str,
                 base: Path | None = None) -> None:
        self.data = data
        self.lines = lines
        self.file = file
        self.base = base or Path.cwd()
        self.overridden: set[KeyPath] = set()

    # -- errors ------------------------------------------------------------
    def line_of(self, path: KeyPath) -> int | None:
        p = path
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        for i in range(len(path), 0, -1):
            if path[:i] in self.overridden:
                raise InputError(message, "--set", None, dotted(path))
        raise InputError(message, self.file, self.line_of(path), dotted(path))

    # -- overrides -----------------------------------------------------------
    def override(self, dotted_key: str, value: Any) -> None:
        """Set ``a.b.c`` (list items by number: ``a.0.b``) to ``value`` (``--set``)."""
        keys: list[str | int] = [int(k) if k.isdigit() else k for k in dotted_key.split(".")]
        if not dotted_key or any(k == "" for k in keys):
            raise InputError(f"bad key path {dotted_key!r}", "--set")
        if self.data is None:
            self.data = {}
        node = self.data
        for i, k in enumerate(keys[:-1]):
            nxt = node[k] if isinstance(node, dict) and k in node else (
                node[k] if isinstance(node, list) and isinstance(k, int) and k < len(node) else None)
            if nxt is None:
                if not isinstance(node, dict):
                    raise InputError(f"cannot set {dotted_key}: {dotted(tuple(keys[:i + 1]))} is not a mapping", "--set")
                nxt = node[k] = {}
            node = nxt
        last = keys[-1]
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = value
        else:
            raise InputError(f"cannot set {dotted_key}", "--set")
        self.overridden.add(tuple(keys))

    # -- typed getters -------------------------------------------------------
    def mapping(self, path: KeyPath, value: Any, allowed: Sequence[str] | None = None,
                required: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_show(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail((*path, key), f"unknown key (expected one of: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(path, f"missing key {key!r}")
        return value

    def sequence(self, path: KeyPath, value: Any) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_show(value)}")
        return value

    def string(self, path: KeyPath, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"expected a string, got {_show(value)}")
        return str(value)

    def integer(self, path: KeyPath, value: Any, minimum: int | None = None) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        if not ok or (minimum is not None and value < minimum):
            self.fail(path, f"expected {what}, got {_show(value)}")
        return int(value)

    def number(self, path: KeyPath, value: Any, positive: bool = False,
               nonnegative: bool = False) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if positive:
            what, ok = "a positive number", ok and value > 0
        elif nonnegative:
            what, ok = "a non-negative number", ok and value >= 0
        else:
            what = "a number"
        if not ok:
            self.fail(path, f"expected {what}, got {_show(value)}")
        return float(value)

    def boolean(self, path: KeyPath, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_show(value)}")
        return value

    def choice(self, path: KeyPath, value: Any, options: Sequence[str]) -> str:
        if value not in options:
            self.fail(path, f"expected one of {', '.join(options)}, got {_show(value)}")
        return str(value)

    def mac(self, path: KeyPath, value: Any) -> str:
        s = self.string(path, value)
        if not _MAC.match(s):
            self.fail(path, f"expected a MAC address like dc:a6:32:01:02:03, got {_show(value)}")
        return s.lower()


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return mapping[key] if key in mapping else default
