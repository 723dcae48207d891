"""Read TOML settings files on every Python the agent supports.

Python >= 3.11 has :mod:`tomllib`; older ones may have ``tomli``.  Without
either (Raspberry Pi OS bullseye ships Python 3.9), a small reader takes the
flat files the agent needs: comments, and top-level ``key = value`` lines
whose values are strings (basic or literal), integers, floats or booleans.
Anything else (tables, arrays, dates, multi-line strings) is refused with the
line number, rather than misread.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable

__all__ = ["TomlError", "loads", "loads_flat"]


class TomlError(ValueError):
    """The text is not TOML, or (for the built-in reader) not flat TOML."""


def _library() -> Callable[[str], dict[str, Any]] | None:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads
    try:
        import tomli  # type: ignore[import-not-found,unused-ignore]

        return tomli.loads  # type: ignore[no-any-return,unused-ignore]
    except ImportError:
        return None


def loads(text: str) -> dict[str, Any]:
    """Parse TOML with the best reader available.  Raises :class:`TomlError`."""
    parse = _library()
    if parse is None:
        return loads_flat(text)
    try:
        return parse(text)
    except ValueError as e:  # tomllib.TOMLDecodeError is a ValueError
        raise TomlError(f"invalid TOML: {e}") from None


_KEY = re.compile(r'\s*(?:(?P<bare>[A-Za-z0-9_-]+)|"(?P<quoted>[^"\\\n]*)")\s*=\s*')
_INT = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_FLOAT = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9](?:_?[0-9])*)?")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _basic_string(s: str, lineno: int) -> tuple[str, str]:
    """The value of a basic string starting after its opening quote, and the rest."""
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), s[i + 1:]
        if c == "\\":
            e = s[i + 1:i + 2]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            width = {"u": 4, "U": 8}.get(e)
            digits = s[i + 2:i + 2 + width] if width else ""
            if width and re.fullmatch(r"[0-9A-Fa-f]+", digits) and len(digits) == width:
                try:
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    raise TomlError(f"line {lineno}: bad unicode escape") from None
                i += 2 + width
                continue
            raise TomlError(f"line {lineno}: bad escape in string")
        if (c < " " and c != "\t") or c == "\x7f":
            raise TomlError(f"line {lineno}: control character in string")
        out.append(c)
        i += 1
    raise TomlError(f"line {lineno}: string is not closed")


def _value(s: str, lineno: int) -> tuple[Any, str]:
    """A value at the start of ``s``, and the rest of the line."""
    if s.startswith('"""') or s.startswith("'''"):
        raise TomlError(f"line {lineno}: multi-line strings are not supported here")
    if s.startswith('"'):
        return _basic_string(s[1:], lineno)
    if s.startswith("'"):
        end = s.find("'", 1)
        if end < 0:
            raise TomlError(f"line {lineno}: string is not closed")
        return s[1:end], s[end + 1:]
    for word, value in (("true", True), ("false", False)):
        if re.match(word + r"(?![\w.])", s):
            return value, s[len(word):]
    m = _FLOAT.match(s)
    if m and m.group() and re.match(r"(?:\s|#|$)", s[m.end():]):
        text = m.group().replace("_", "")
        return (int(text) if _INT.fullmatch(m.group()) else float(text)), s[m.end():]
    raise TomlError(f"line {lineno}: unsupported value (without tomllib or tomli only "
                    "strings, integers, floats and booleans are read)")


def loads_flat(text: str) -> dict[str, Any]:
    """Parse flat TOML: top-level ``key = value`` lines and comments only."""
    out: dict[str, Any] = {}
    # split on LF only: str.splitlines() would also split inside strings, at U+0085 or U+2028
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            raise TomlError(f"line {lineno}: tables are not supported here; "
                            "put the settings at the top level")
        m = _KEY.match(line)
        if not m:
            raise TomlError(f"line {lineno}: expected key = value")
        key = m["bare"] if m["bare"] is not None else m["quoted"]
        value, rest = _value(line[m.end():], lineno)
        rest = rest.strip()
        if rest and not rest.startswith("#"):
            raise TomlError(f"line {lineno}: unexpected text after the value: {rest!r}")
        if key in out:
            raise TomlError(f"line {lineno}: {key} is set twice")
        out[key] = value
    return out
