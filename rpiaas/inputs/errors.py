"""The errors of bad input: :class:`InputError` (``file:line: key.path: message``) and
:class:`LimitError` (input past one of :data:`rpiaas.inputs.limits.LIMITS`)."""

from __future__ import annotations

import re

__all__ = ["InputError", "LimitError"]

_LONG_QUOTE = re.compile(r"'(?:[^'\\\n]|\\.){160,}'|\"(?:[^\"\\\n]|\\.){160,}\"")


def _shorten(m: re.Match[str]) -> str:
    text = m.group(0)
    return f"{text[:81]}...{text[0]} ({len(text) - 2:,} characters)"


class InputError(ValueError):
    """Bad input, located: ``file:line: key.path: message``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 path: str = "") -> None:
        message = _LONG_QUOTE.sub(_shorten, message)  # never echo a whole line of input back
        if len(path) > 160:  # a key of a thousand brackets
            path = f"{path[:80]}... ({len(path):,} characters)"
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        where = file or "<input>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {path + ': ' if path else ''}{message}")


class LimitError(InputError):
    """Input past one of :data:`rpiaas.inputs.limits.LIMITS`; the message names the limit and its variable."""
