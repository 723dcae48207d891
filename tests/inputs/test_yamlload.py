"""The bounded YAML loader: deep nesting and alias bombs refused in one located line, before
anything is built; ordinary aliases and merges still work."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.source import LimitError, load, load_file
from rpiaas.scenario import load_scenario, parse_overrides

from .inputfiles import bomb, write

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"






# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_one_located_line(tmp_path: Path, opening: str) -> None:
    depth = 500
    if opening == "- ":
        text = "name: x\ncluster:\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "1\n"
    else:
        close = "]" if opening == "[" else "}"
        text = "name: x\ncluster: " + opening * depth + "1" + close * depth + "\n"
    f = write(tmp_path, text)
    with pytest.raises(LimitError) as exc:
        load_scenario(f)
    message = str(exc.value)
    assert re.match(rf"{re.escape(str(f))}:\d+: nested deeper than 50 levels \(limit 50 levels; "
                    r"set RPIAAS_MAX_DEPTH to raise it\)$", message), message


def test_deep_json_and_deep_set_values_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path, "[" * 100_000 + "]" * 100_000, "c.json")
    with pytest.raises(LimitError, match=r"nested too deeply .*RPIAAS_MAX_DEPTH"):
        load_cluster(f)
    with pytest.raises(LimitError, match=r"^--set: name: nested deeper than 50 levels"):
        parse_overrides(["name=" + "[" * 1000 + "]" * 1000])
    with pytest.raises(LimitError, match=r"^--set: a key path of 1,000 parts"):
        load_scenario(QUICKSTART, [(".".join(["a"] * 1000), 1)])


# ---------------------------------------------------------------- aliases
def test_an_alias_bomb_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    f = write(tmp_path, bomb())
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_file(f)
    assert time.perf_counter() - t0 < 1.0
    assert re.match(rf"{re.escape(str(f))}:\d+: aliases expand this value to [\d,]+ values, more than "
                    r"100,000 beyond those written \(limit 100,000 values; set RPIAAS_MAX_ALIAS_VALUES",
                    str(exc.value)), str(exc.value)


def test_aliases_that_nest_deep_are_refused(tmp_path: Path) -> None:
    text = "a: &a [x]\n" + "".join(
        f"b{i}: &b{i} " + "[" * 40 + ("*a" if i == 1 else f"*b{i - 1}") + "]" * 40 + "\n"
        for i in range(1, 30))
    with pytest.raises(LimitError, match=r"aliases nest this value deeper than 50 levels"):
        load(text)


def test_ordinary_aliases_and_merges_still_work() -> None:
    data, _ = load("d: &d {cores: 2}\nx: {<<: *d, mem_mb: 3}\ny: [*d, *d]\n")
    assert data["x"] == {"cores": 2, "mem_mb": 3} and data["y"] == [{"cores": 2}] * 2
