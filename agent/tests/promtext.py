"""A strict reader of the Prometheus text exposition format (0.0.4), for checking /metrics."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABEL = rf"{LABEL_NAME}={LABEL_VALUE}"
VALUE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|NaN)"
HELP = re.compile(rf"# HELP (?P<name>{NAME}) (?P<doc>.*)")
TYPE = re.compile(rf"# TYPE (?P<name>{NAME}) (?P<type>counter|gauge|histogram|summary|untyped)")
SAMPLE = re.compile(rf"(?P<name>{NAME})(?:\{{(?P<labels>(?:{LABEL})(?:,{LABEL})*)?,?\}})? "
                    rf"(?P<value>{VALUE})(?: (?P<ts>-?[0-9]+))?")
ONE_LABEL = re.compile(rf"(?P<k>{LABEL_NAME})=(?P<v>{LABEL_VALUE})")


class ExpositionError(ValueError):
    pass


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        found = [v for lab, v in self.samples if lab == labels]
        if len(found) != 1:
            raise KeyError(f"{self.name}{labels}: {len(found)} samples")
        return found[0]


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v[1:-1])


def parse(text: str) -> dict[str, Family]:
    """The families in ``text``; raises :class:`ExpositionError` on the first bad line."""
    if not text.endswith("\n"):
        raise ExpositionError("the text does not end with a newline")
    families: dict[str, Family] = {}
    closed: set[str] = set()  # families whose samples have ended: they may not come back
    current: str | None = None

    def enter(name: str, lineno: int) -> Family:
        nonlocal current
        if name != current:
            if name in closed:
                raise ExpositionError(f"line {lineno}: {name} is not contiguous")
            if current is not None:
                closed.add(current)
            current = name
        return families.setdefault(name, Family(name))

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("#"):
            if m := HELP.fullmatch(line):
                fam = enter(m["name"], lineno)
                if fam.help is not None or fam.samples:
                    raise ExpositionError(f"line {lineno}: HELP after samples or twice")
                fam.help = m["doc"]
            elif m := TYPE.fullmatch(line):
                fam = enter(m["name"], lineno)
                if fam.samples or fam.type != "untyped":
                    raise ExpositionError(f"line {lineno}: TYPE after samples or twice")
                fam.type = m["type"]
            elif line.startswith(("# HELP", "# TYPE")):
                raise ExpositionError(f"line {lineno}: malformed {line[:6]!r} line: {line!r}")
            continue
        m = SAMPLE.fullmatch(line)
        if not m:
            raise ExpositionError(f"line {lineno}: not a sample: {line!r}")
        fam = enter(m["name"], lineno)
        labels: dict[str, str] = {}
        for lm in ONE_LABEL.finditer(m["labels"] or ""):
            if lm["k"] in labels:
                raise ExpositionError(f"line {lineno}: label {lm['k']} twice")
            labels[lm["k"]] = _unescape(lm["v"])
        if any(lab == labels for lab, _ in fam.samples):
            raise ExpositionError(f"line {lineno}: duplicate sample {line!r}")
        v = m["value"]
        value = math.nan if v == "NaN" else float(v.replace("Inf", "inf"))
        fam.samples.append((labels, value))
    return families
