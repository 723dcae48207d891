"""The errors of bad input: :class:`InputError` (``file:line: key.path: message``) and
:class:`LimitError` (input past one of :data:`rpiaas.inputs.limits.LIMITS`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["InputError", "LimitError", "did_you_mean"]

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


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'run'?)"`` for the choice closest to a mistyped ``word``, or ``""``.

    The one home for the suggestions of commands, options, scenario keys, node types and
    policy names.  Only short words are compared (a key of a thousand characters is not).
    """
    if not isinstance(word, str) or not word or len(word) > 100:
        return ""
    options = [c for c in choices if isinstance(c, str)]
    import difflib  # here: only a mistake needs it

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:  # a different case, or a prefix ("pol" for "policy")
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
        else:
            close = [c for c in options if len(word) >= 3 and c.startswith(word)][:1]
    return f" (did you mean {close[0]!r}?)" if close and close[0] != word else ""
