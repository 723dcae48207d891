"""The input limits: each raised by its variable (within bounds), documented, and the size limit read before parsing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.limits import LIMITS
from rpiaas.inputs.source import InputError, LimitError, load, load_file
from rpiaas.scenario import load_scenario

from .inputfiles import TWENTY, bomb, write

ROOT = Path(__file__).resolve().parents[2]




def test_the_depth_limit_can_be_raised_within_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: " + "[" * 80 + "]" * 80
    with pytest.raises(LimitError):
        load(text)
    monkeypatch.setenv("RPIAAS_MAX_DEPTH", "100")
    assert isinstance(load(text)[0]["a"], list)
    monkeypatch.setenv("RPIAAS_MAX_DEPTH", "100000")  # past what Python's stack can hold
    with pytest.raises(InputError, match=r"^RPIAAS_MAX_DEPTH: expected a positive number up to 200"):
        load(text)


def test_the_alias_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MAX_ALIAS_VALUES", "2000")
    with pytest.raises(LimitError):
        load(bomb(3))  # 9^4 values
    monkeypatch.setenv("RPIAAS_MAX_ALIAS_VALUES", "20000")
    assert len(load(bomb(3))[0]["d"]) == 9


# ---------------------------------------------------------------- size
def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with f.open("w") as out:
        out.write("name: x\n")
        out.write(("# " + "y" * 998 + "\n") * 12_000)  # 12 MB of comments
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_scenario(f)
    assert time.perf_counter() - t0 < 1.0
    assert str(exc.value) == (f"{f}: more than 10.0 MB of input, more than rpiaas reads "
                              "(limit 10 MB; set RPIAAS_MAX_INPUT_MB to raise it)")


def test_an_endless_file_is_read_only_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "0.5")
    with pytest.raises(LimitError, match=r"limit 0.5 MB"):
        load_file("/dev/zero")


def test_the_size_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path, TWENTY + "description: " + "x" * 2_000_000 + "\n")
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "1")
    with pytest.raises(LimitError):
        load_scenario(f)
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "3")
    assert load_scenario(f).name == "twenty"
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "lots")
    with pytest.raises(InputError, match=r"^RPIAAS_MAX_INPUT_MB: expected a positive number, got 'lots'"):
        load_scenario(f)


def test_limits_are_documented() -> None:
    text = (ROOT / "docs" / "scenario.md").read_text()
    for limit in LIMITS:
        assert f"`{limit.variable}`" in text, limit.variable


# ---------------------------------------------------------------- a million nodes
@pytest.mark.parametrize("count", ["1e12", "1.5e6", "2000001"])
def test_a_count_past_the_node_limit_is_refused_however_written(tmp_path: Path, count: str) -> None:
    f = write(tmp_path, f"clusters:\n  - {{count: 600000, type: rpi4b}}\n"
                        f"  - {{count: {count}, type: rpi4b, hostname: 'n{{i}}'}}\n", "c.yaml")
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=re.escape(f"{f}:3: clusters[1].count: the cluster reaches")):
        load_cluster(f)
    assert time.perf_counter() - t0 < 1.0


def test_a_million_node_cluster_validates_in_seconds(tmp_path: Path) -> None:
    f = write(tmp_path, "clusters:\n  - {domain: big.test, count: 1000000, type: rpi4b}\n", "c.yaml")
    t0 = time.perf_counter()
    spec = load_cluster(f)
    assert len(spec.nodes) == 1_000_000 and spec.nodes[-1].hostname == "node1000000"
    assert time.perf_counter() - t0 < 20.0  # about 3 s on an idle machine
