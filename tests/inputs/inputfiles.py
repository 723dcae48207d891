"""Input files the input tests share: a small valid scenario, a writer, an alias bomb."""

from __future__ import annotations

from pathlib import Path

TWENTY = """\
name: twenty
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 20, type: rpi4b}]}
workload:
  generator: {count: 20, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: best_fit
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def bomb(levels: int = 9) -> str:
    """YAML whose aliases expand to 9 ** (levels + 1) strings."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"
